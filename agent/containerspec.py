"""Pod and container specs turned into CRI sandbox and container configs.

Everything a container sees is decided here: the environment (service links,
`envFrom`, `env` with `valueFrom` and `$(VAR)` expansion), mounts (volumes with
subPath, /etc/hosts, the termination-log file), resources (requests/limits to
CPU shares, quota and memory limit; OOM score by QoS class) and the security
context. Problems the user must fix (a missing configMap key, a bad subPath)
raise `ContainerConfigError`, which the worker reports as upstream's
`CreateContainerConfigError`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agent import runtime as rt
from agent import safepath
from agent.volumes import ObjectSource, VolumeError, field_value, resource_value
from controlplane.api import quantity
from cri import api_pb2

Obj = dict[str, Any]
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
DEFAULT_MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_PROTOCOLS = {"TCP": api_pb2.TCP, "UDP": api_pb2.UDP, "SCTP": api_pb2.SCTP}


class ContainerConfigError(Exception):
    """The container cannot be configured from its spec as the cluster stands now."""


@dataclass
class NodeContext:
    """What the specs need to know about the node and the cluster."""

    node_name: str
    node_ip: str
    cluster_dns: list[str]
    cluster_domain: str
    cgroup_root: str
    pod_logs_dir: Path
    allocatable: Obj
    memory_capacity: int


def container_hash(container: Obj) -> str:
    return hashlib.sha256(orjson.dumps(container, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]


def qos_class(pod: Obj) -> str:
    requests: dict[str, int] = {}
    limits: dict[str, int] = {}
    guaranteed = True
    for c in ((pod.get("spec") or {}).get("containers") or []) + ((pod.get("spec") or {}).get("initContainers") or []):
        resources = c.get("resources") or {}
        req, lim = resources.get("requests") or {}, resources.get("limits") or {}
        for name in ("cpu", "memory"):
            if name in req:
                requests[name] = requests.get(name, 0) + quantity.milli(str(req[name]))
            if name in lim:
                limits[name] = limits.get(name, 0) + quantity.milli(str(lim[name]))
            if name not in lim or quantity.milli(str(req.get(name, lim.get(name, 0)))) != quantity.milli(
                    str(lim.get(name, 0))):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def log_directory(ctx: NodeContext, pod: Obj) -> Path:
    md = pod["metadata"]
    return ctx.pod_logs_dir / f"{md.get('namespace')}_{md['name']}_{md['uid']}"


def cgroup_parent(ctx: NodeContext, pod: Obj) -> str:
    qos = qos_class(pod)
    middle = "" if qos == "Guaranteed" else f"/{qos.lower()}"
    return f"{ctx.cgroup_root.rstrip('/')}{middle}/pod{pod['metadata']['uid']}"


def _host_resolv() -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return servers, searches, options
    for line in lines:
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, searches, options


def dns_config(ctx: NodeContext, pod: Obj) -> api_pb2.DNSConfig:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if spec.get("hostNetwork") and policy == "ClusterFirst":
        policy = "Default"
    servers, searches, options = _host_resolv()
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and ctx.cluster_dns:
        namespace = pod["metadata"].get("namespace") or "default"
        domain = ctx.cluster_domain
        servers = list(ctx.cluster_dns)
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *searches]
        options = ["ndots:5"]
    elif policy == "None":
        servers, searches, options = [], [], []
    extra = spec.get("dnsConfig") or {}
    servers += [s for s in extra.get("nameservers") or [] if s not in servers]
    searches += [s for s in extra.get("searches") or [] if s not in searches]
    for option in extra.get("options") or []:
        text = option["name"] + (f":{option['value']}" if option.get("value") else "")
        options = [o for o in options if o.split(":")[0] != option["name"]] + [text]
    return api_pb2.DNSConfig(servers=servers[:3], searches=searches[:32], options=options)


def hostname_of(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("hostname") or pod["metadata"]["name"])[:63]


def sandbox_config(ctx: NodeContext, pod: Obj, attempt: int) -> api_pb2.PodSandboxConfig:
    md, spec = pod["metadata"], pod.get("spec") or {}
    host_network = bool(spec.get("hostNetwork"))
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append(api_pb2.PortMapping(protocol=_PROTOCOLS.get(port.get("protocol", "TCP"), api_pb2.TCP),
                                                 container_port=int(port["containerPort"]),
                                                 host_port=int(port["hostPort"]), host_ip=port.get("hostIP", "")))
    namespaces = api_pb2.NamespaceOption(
        network=api_pb2.NODE if host_network else api_pb2.POD,
        pid=api_pb2.NODE if spec.get("hostPID") else api_pb2.CONTAINER,
        ipc=api_pb2.NODE if spec.get("hostIPC") else api_pb2.POD)
    security = spec.get("securityContext") or {}
    sandbox_security = api_pb2.LinuxSandboxSecurityContext(namespace_options=namespaces)
    if security.get("runAsUser") is not None:
        sandbox_security.run_as_user.value = int(security["runAsUser"])
    sysctls = {s["name"]: str(s.get("value", "")) for s in security.get("sysctls") or []}
    labels = {**(md.get("labels") or {}), rt.POD_NAME: md["name"], rt.POD_NAMESPACE: md.get("namespace") or "default",
              rt.POD_UID: md["uid"]}
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=md["name"], uid=md["uid"], namespace=md.get("namespace") or "default",
                                            attempt=attempt),
        hostname="" if host_network else hostname_of(pod),
        log_directory=str(log_directory(ctx, pod)),
        dns_config=dns_config(ctx, pod),
        port_mappings=ports,
        labels=labels,
        annotations={**(md.get("annotations") or {})},
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent(ctx, pod), security_context=sandbox_security,
                                            sysctls=sysctls))


# -- environment ----------------------------------------------------------------------

def service_env(services: list[Obj]) -> dict[str, str]:
    """Docker-link style variables for every Service with a cluster IP, as upstream's enableServiceLinks."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or not spec.get("ports"):
            continue
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        ports = spec["ports"]
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
        first = ports[0]
        env[f"{prefix}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
        for port in ports:
            proto = port.get("protocol", "TCP")
            base = f"{prefix}_PORT_{port['port']}_{proto}"
            env[base] = f"{proto.lower()}://{ip}:{port['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(port["port"])
            env[f"{base}_ADDR"] = ip
    return env


def expand(text: str, env: dict[str, str]) -> str:
    """Upstream's `$(VAR)` expansion: unknown references stay as written, `$$` escapes."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)
    return _VAR_REF.sub(replace, text)


def _key_ref(source: ObjectSource, kind: str, namespace: str, ref: Obj) -> str | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    values = _source_data(source, kind, namespace, name, optional)
    if key in values:
        return values[key]
    if optional:
        return None
    raise ContainerConfigError(f"couldn't find key {key} in {'ConfigMap' if kind == 'configmap' else 'Secret'} "
                               f"{namespace}/{name}")


def _source_data(source: ObjectSource, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str]:
    """A ConfigMap's or Secret's data as text; {} for a missing optional one."""
    obj = source.configmap(namespace, name) if kind == "configmap" else source.secret(namespace, name)
    if obj is None:
        if optional:
            return {}
        raise ContainerConfigError(f'{kind} "{name}" not found')
    if kind == "configmap":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}


def container_env(ctx: NodeContext, pod: Obj, container: Obj, source: ObjectSource,
                  services: list[Obj]) -> dict[str, str]:
    spec = pod.get("spec") or {}
    namespace = pod["metadata"].get("namespace") or "default"
    env: dict[str, str] = {}
    if spec.get("enableServiceLinks", True):
        env.update(service_env([s for s in services if s["metadata"].get("namespace") == namespace]))
    master = [s for s in services if s["metadata"].get("namespace") == "default" and s["metadata"]["name"] == "kubernetes"]
    env.update({k: v for k, v in service_env(master).items() if k.startswith("KUBERNETES_")})
    for env_from in container.get("envFrom") or []:
        kind = "configmap" if "configMapRef" in env_from else "secret"
        ref = env_from.get("configMapRef") or env_from.get("secretRef") or {}
        values = _source_data(source, kind, namespace, ref.get("name", ""), bool(ref.get("optional")))
        env.update({env_from.get("prefix", "") + k: v for k, v in values.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        value_from = var["valueFrom"] or {}
        value: str | None
        if "fieldRef" in value_from:
            try:
                value = field_value(pod, value_from["fieldRef"].get("fieldPath", ""))
            except VolumeError as exc:
                raise ContainerConfigError(str(exc)) from None
        elif "resourceFieldRef" in value_from:
            ref = value_from["resourceFieldRef"]
            value = resource_value(pod, ref.get("containerName") or container["name"], ref.get("resource", ""),
                                   ref.get("divisor"), ctx.allocatable)
        elif "configMapKeyRef" in value_from:
            value = _key_ref(source, "configmap", namespace, value_from["configMapKeyRef"])
        elif "secretKeyRef" in value_from:
            value = _key_ref(source, "secret", namespace, value_from["secretKeyRef"])
        else:
            raise ContainerConfigError(f"env {name}: valueFrom names no source")
        if value is not None:
            env[name] = value
    return env


# -- resources and security ---------------------------------------------------------

def linux_resources(ctx: NodeContext, pod: Obj, container: Obj) -> api_pb2.LinuxContainerResources:
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    cpu_request = quantity.milli(str(requests.get("cpu", limits.get("cpu", 0))))
    out = api_pb2.LinuxContainerResources(cpu_shares=max(cpu_request * 1024 // 1000, 2))
    if "cpu" in limits:
        out.cpu_period = 100000
        out.cpu_quota = max(quantity.milli(str(limits["cpu"])) * 100000 // 1000, 1000)
    if "memory" in limits:
        out.memory_limit_in_bytes = quantity.whole(str(limits["memory"]))
    qos = qos_class(pod)
    if qos == "Guaranteed":
        out.oom_score_adj = -997
    elif qos == "BestEffort":
        out.oom_score_adj = 1000
    else:
        memory_request = quantity.whole(str(requests.get("memory", 0)))
        score = 1000 - (1000 * memory_request) // max(ctx.memory_capacity, 1)
        out.oom_score_adj = int(min(max(score, 2), 999))
    return out


def security_context(pod: Obj, container: Obj) -> api_pb2.LinuxContainerSecurityContext:
    spec = pod.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    out = api_pb2.LinuxContainerSecurityContext(
        privileged=bool(sc.get("privileged")),
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
        namespace_options=api_pb2.NamespaceOption(
            network=api_pb2.NODE if spec.get("hostNetwork") else api_pb2.POD,
            pid=api_pb2.NODE if spec.get("hostPID") else api_pb2.CONTAINER,
            ipc=api_pb2.NODE if spec.get("hostIPC") else api_pb2.POD),
        supplemental_groups=[int(g) for g in pod_sc.get("supplementalGroups") or []],
        no_new_privs=sc.get("allowPrivilegeEscalation") is False)
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if run_as_user is not None:
        out.run_as_user.value = int(run_as_user)
    run_as_group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if run_as_group is not None:
        out.run_as_group.value = int(run_as_group)
    caps = sc.get("capabilities") or {}
    if caps:
        out.capabilities.add_capabilities.extend(caps.get("add") or [])
        out.capabilities.drop_capabilities.extend(caps.get("drop") or [])
    if not out.privileged and sc.get("procMount", "Default") == "Default":
        out.masked_paths.extend(DEFAULT_MASKED_PATHS)
        out.readonly_paths.extend(DEFAULT_READONLY_PATHS)
    return out


# -- mounts ---------------------------------------------------------------------------

_READONLY_KINDS = ("configMap", "secret", "projected", "downwardAPI")


def container_mounts(pod: Obj, container: Obj, volume_paths: dict[str, Path], extra: list[api_pb2.Mount],
                     env: dict[str, str] | None = None, subpaths_dir: Path | None = None) -> list[api_pb2.Mount]:
    """The container's mounts; with `subpaths_dir`, each subPath is bind-mounted there first (upstream's way).

    A subPath (or a subPathExpr after `$(VAR)` expansion with the container's
    environment) must be relative and without `..`, and must resolve inside its
    volume. With `subpaths_dir` (the agent always gives one) the checked path is
    opened without following symlinks and bind-mounted at
    `volume-subpaths/<volume>/<container>/<index>`, which is what the runtime then
    mounts: a symlink a container swaps in later cannot redirect it.
    """
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    container_name = _checked_name(container.get("name", ""), "container name")
    mounts: list[api_pb2.Mount] = []
    for index, vm in enumerate(container.get("volumeMounts") or []):
        name = vm.get("name", "")
        if name not in volume_paths:
            raise ContainerConfigError(f'cannot find volume "{name}" to mount into container "{container_name}"')
        host_path = volume_paths[name]
        readonly_kind = any(k in volumes.get(name, {}) for k in _READONLY_KINDS)
        sub_path = _sub_path(vm, env or {})
        if sub_path:
            host_path = _provision_sub_path(host_path, sub_path, writable=not readonly_kind,
                                            target=None if subpaths_dir is None else
                                            subpaths_dir / _checked_name(name, "volume name") / container_name /
                                            str(index))
        readonly = bool(vm.get("readOnly")) or readonly_kind
        propagation = {"HostToContainer": api_pb2.PROPAGATION_HOST_TO_CONTAINER,
                       "Bidirectional": api_pb2.PROPAGATION_BIDIRECTIONAL}.get(vm.get("mountPropagation", ""),
                                                                                api_pb2.PROPAGATION_PRIVATE)
        mounts.append(api_pb2.Mount(container_path=vm["mountPath"], host_path=str(host_path), readonly=readonly,
                                    propagation=propagation))
    taken = {m.container_path for m in mounts}
    mounts.extend(m for m in extra if m.container_path not in taken)
    return mounts


def termination_message_path(container: Obj) -> str:
    """Where in the container the termination message is read from: absolute, without `..` ("" for none).

    The host side is the agent's own file under the pod's directory, named by the
    (checked) container name; the container side is refused unless it is a plain
    absolute path, as a second check behind the API's validation.
    """
    path = str(container.get("terminationMessagePath", "/dev/termination-log") or "")
    if path and (not path.startswith("/") or "\x00" in path or ".." in path.split("/")):
        raise ContainerConfigError(f"terminationMessagePath {path!r} must be an absolute path without '..'")
    return path


def _checked_name(name: str, what: str) -> str:
    try:
        return safepath.check_name(name, what)
    except safepath.UnsafePathError as exc:
        raise ContainerConfigError(str(exc)) from None


def _sub_path(vm: Obj, env: dict[str, str]) -> str:
    """The mount's subPath, or its subPathExpr expanded with the container's environment; checked."""
    sub_path = str(vm.get("subPath") or "")
    expr = str(vm.get("subPathExpr") or "")
    if expr:
        if sub_path:
            raise ContainerConfigError(f'volumeMount "{vm.get("name")}": subPath and subPathExpr are mutually '
                                       "exclusive")
        sub_path = expand(expr, env)
        if _VAR_REF.search(sub_path.replace("$$", "")):
            raise ContainerConfigError(f"unable to expand subPathExpr `{expr}`: it references a variable the "
                                       "container does not have")
    if not sub_path:
        return ""
    if sub_path.startswith("/"):
        raise ContainerConfigError(f"error SubPath `{sub_path}` must not be an absolute path")
    try:
        safepath.check_no_backsteps(sub_path)
    except safepath.UnsafePathError as exc:
        raise ContainerConfigError(f"unable to provision SubPath `{sub_path}`: {exc}") from None
    return "/".join(p for p in sub_path.split("/") if p not in ("", "."))


def _provision_sub_path(volume_dir: Path, sub_path: str, *, writable: bool, target: Path | None) -> Path:
    """The host path the runtime mounts for `sub_path` of `volume_dir`; refused if it leaves the volume."""
    if not sub_path:
        return volume_dir
    try:
        if writable and not os.path.lexists(volume_dir / sub_path):
            safepath.make_dirs_beneath(volume_dir, sub_path, stat.S_IMODE(os.stat(volume_dir).st_mode))
        if not os.path.lexists(volume_dir / sub_path):
            raise ContainerConfigError(f"unable to provision SubPath `{sub_path}`: it does not exist in the volume")
        if target is None:
            if not safepath.is_within(volume_dir, volume_dir / sub_path):
                raise safepath.UnsafePathError(f"{sub_path} resolves outside the volume")
            return Path(os.path.realpath(volume_dir / sub_path))
        fd = safepath.open_beneath(volume_dir, sub_path)
        try:
            _mount_point(target, directory=safepath.fd_is_dir(fd))
            safepath.bind_fd(fd, target)
        finally:
            os.close(fd)
        return target
    except safepath.UnsafePathError as exc:
        raise ContainerConfigError(f"unable to provision SubPath `{sub_path}`: {exc}") from None
    except OSError as exc:
        raise ContainerConfigError(f"unable to provision SubPath `{sub_path}`: {exc.strerror or exc}") from None


def _mount_point(path: Path, *, directory: bool) -> None:
    """An empty directory or file at `path` to bind-mount onto (replacing one of the other kind)."""
    safepath.unmount(path)
    if os.path.lexists(path) and (path.is_dir() and not path.is_symlink()) != directory:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if directory:
        path.mkdir(mode=0o750, exist_ok=True)
    elif not os.path.lexists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640))


def container_config(ctx: NodeContext, pod: Obj, container: Obj, *, restart_count: int,
                     env: dict[str, str], mounts: list[api_pb2.Mount]) -> api_pb2.ContainerConfig:
    md = pod["metadata"]
    name = container["name"]
    command = [expand(c, env) for c in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=name, attempt=restart_count),
        image=api_pb2.ImageSpec(image=container.get("image", "")),
        command=command, args=args, working_dir=container.get("workingDir", ""),
        envs=[api_pb2.KeyValue(key=k, value=v) for k, v in env.items()],
        mounts=mounts,
        labels={rt.POD_NAME: md["name"], rt.POD_NAMESPACE: md.get("namespace") or "default", rt.POD_UID: md["uid"],
                rt.CONTAINER_NAME: name},
        annotations={rt.CONTAINER_HASH: container_hash(container), rt.RESTART_COUNT: str(restart_count),
                     rt.TERMINATION_MESSAGE_PATH: container.get("terminationMessagePath", "/dev/termination-log"),
                     rt.GRACE_PERIOD: str(grace)},
        log_path=f"{name}/{restart_count}.log",
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=api_pb2.LinuxContainerConfig(resources=linux_resources(ctx, pod, container),
                                           security_context=security_context(pod, container)))
