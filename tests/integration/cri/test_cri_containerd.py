"""The CRI client against a real containerd 1.6: images, a sandbox, a container, exec, logs, errors.

Each test gets a private containerd (own root, state, socket, CNI config) running
inside a network namespace the test creates, next to a private registry front
on that namespace's loopback which serves the platform's image store
(scripts/setup-platform.sh) as `pyk8s.local`. Pod networking is the CNI bridge
plugin without gateway or masquerading, so the bridge and the pod addresses
exist only inside that namespace. Everything — containers, sandboxes, shims,
mounts, cgroups, both processes and the namespace — is removed afterwards, also
when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import shutil
import string
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.containerd import ContainerdPaths, ContainerdSupervisor, render_config
from cri import api_pb2
from cri.client import ImageClient, RuntimeClient
from cri.errors import CRIError, NotFoundError
from lab import cleanup, network, processes
from lab.cluster import write_registry_config
from tests.helpers import eventually

REGISTRY_STORAGE = Path("/var/lib/pyk8s/registry/storage")
BUSYBOX = "pyk8s.local/busybox:1"
CNI_BIN_DIR = Path("/usr/lib/cni")

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (containerd, network namespaces)"
    for tool in ("containerd", "runc", "nsenter", "ip", "docker-registry", "curl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup-platform.sh installs it)"
    for plugin in ("bridge", "host-local", "loopback"):
        if not (CNI_BIN_DIR / plugin).exists():
            return f"CNI plugin {CNI_BIN_DIR / plugin} is missing (containernetworking-plugins)"
    if not REGISTRY_STORAGE.is_dir():
        return f"no image store at {REGISTRY_STORAGE} (scripts/setup-platform.sh builds it)"
    return None


def _run(*argv: str) -> str:
    """Run a command, fail loudly (stop at the first failed command)."""
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def cni_conflist(subnet: str) -> str:
    """Bridge + host-local + loopback; no gateway and no masquerade, so nothing leaves the namespace."""
    return json.dumps({
        "cniVersion": "0.4.0",
        "name": "pyk8s-crit",
        "plugins": [
            {"type": "bridge", "bridge": "crit0", "isGateway": False, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}},
            {"type": "loopback"},
        ],
    }, indent=2)


@dataclass
class CRINode:
    name: str
    base: Path
    subnet: str
    runtime: RuntimeClient
    images: ImageClient

    @property
    def log_directory(self) -> Path:
        return self.base / "pods"

    @property
    def cgroup_parent(self) -> str:
        return f"/{self.name}"


async def _remove_all_pods(runtime: RuntimeClient) -> None:
    listing = await runtime.list_pod_sandbox()
    for sandbox in listing.items:
        with contextlib.suppress(CRIError):
            await runtime.stop_pod_sandbox(sandbox.id)
        with contextlib.suppress(CRIError):
            await runtime.remove_pod_sandbox(sandbox.id)


@dataclass
class Scene:
    """What a test creates on the host, in creation order; `teardown` undoes whatever exists of it."""

    name: str
    subnet: str
    netns_created: bool = False
    records: list[processes.ProcessRecord] = field(default_factory=list)

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.name}"

    @property
    def base(self) -> Path:
        return Path(f"/tmp/{self.name}")  # short: unix socket paths are limited to 108 bytes

    @property
    def paths(self) -> ContainerdPaths:
        return ContainerdPaths(self.base / "containerd")

    def prepare(self) -> Path:
        """Namespace, registry front, CNI config; returns the containerd launcher."""
        self.base.mkdir()
        _run("ip", "netns", "add", self.name)
        self.netns_created = True
        _run("ip", "-n", self.name, "link", "set", "lo", "up")
        config = write_registry_config(self.base / "registry.yml", "127.0.0.1:5000", REGISTRY_STORAGE)
        self.records.append(processes.spawn("registry", ["docker-registry", "serve", str(config)],
                                            self.base / "registry.log", netns_path=self.netns_path))
        self.paths.cni_conf_dir.mkdir(parents=True)
        (self.paths.cni_conf_dir / "10-pyk8s-crit.conflist").write_text(cni_conflist(self.subnet))
        # the supervisor starts one binary: this one enters the namespace and becomes containerd (exec)
        launcher = self.base / "containerd-in-netns"
        launcher.write_text(f'#!/bin/sh\nexec nsenter --net={self.netns_path} -- containerd "$@"\n')
        launcher.chmod(0o755)
        return launcher

    def registry_up(self) -> bool:
        """Asked from inside the namespace: the host's 127.0.0.1 is another one."""
        argv = ["nsenter", f"--net={self.netns_path}", "--", "curl", "-fs", "-o", "/dev/null",
                "http://127.0.0.1:5000/v2/"]
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0

    def teardown(self) -> None:
        processes.stop(self.records, grace=5)
        cleanup.remove_leftovers(self.base)  # shims, container processes, mounts
        cleanup.remove_empty_cgroups(self.name)
        if self.netns_created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
async def node() -> AsyncIterator[CRINode]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    scene = Scene(name="pyk8s-crit-" + "".join(random.choices(string.ascii_lowercase + string.digits, k=6)),
                  subnet=await asyncio.to_thread(network.free_subnet, "10.250"))
    supervisor: ContainerdSupervisor | None = None
    runtime: RuntimeClient | None = None
    images: ImageClient | None = None
    try:
        launcher = await asyncio.to_thread(scene.prepare)
        await eventually(lambda: asyncio.to_thread(scene.registry_up), timeout=30, interval=0.2)
        paths = scene.paths
        supervisor = ContainerdSupervisor(
            paths, render_config(paths, registry_mirrors={"pyk8s.local": "http://127.0.0.1:5000"}),
            binary=str(launcher))
        await supervisor.start()
        runtime = RuntimeClient(paths.endpoint, timeout=30.0)
        images = ImageClient(paths.endpoint, pull_timeout=120.0)

        async def network_ready() -> bool:
            assert runtime is not None
            conditions = (await runtime.status()).status.conditions
            return all(c.status for c in conditions if c.type in ("RuntimeReady", "NetworkReady"))

        await eventually(network_ready, timeout=30, interval=0.2)
        yield CRINode(scene.name, scene.base, scene.subnet, runtime, images)
    finally:
        if runtime is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_remove_all_pods(runtime), 90)
            await runtime.close()
        if images is not None:
            await images.close()
        if supervisor is not None:
            await supervisor.stop()
        await asyncio.to_thread(scene.teardown)


def sandbox_config(node: CRINode, pod: str) -> api_pb2.PodSandboxConfig:
    uid = "uid-" + pod
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=pod, uid=uid, namespace="default", attempt=0),
        hostname=pod,
        log_directory=str(node.log_directory / f"default_{pod}_{uid}"),
        dns_config=api_pb2.DNSConfig(servers=["10.96.0.10"], searches=["default.svc.cluster.local"],
                                     options=["ndots:5"]),
        labels={"io.kubernetes.pod.name": pod, "test": node.name},
        annotations={"note": "cri integration test"},
        linux=api_pb2.LinuxPodSandboxConfig(
            cgroup_parent=node.cgroup_parent,
            security_context=api_pb2.LinuxSandboxSecurityContext(
                namespace_options=api_pb2.NamespaceOption(network=api_pb2.POD, pid=api_pb2.CONTAINER,
                                                          ipc=api_pb2.POD))))


def container_config(name: str, image_ref: str, command: list[str]) -> api_pb2.ContainerConfig:
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=name, attempt=0),
        image=api_pb2.ImageSpec(image=image_ref),
        command=command,
        envs=[api_pb2.KeyValue(key="GREETING", value="hello-from-env")],
        labels={"io.kubernetes.container.name": name},
        log_path=f"{name}/0.log",
        linux=api_pb2.LinuxContainerConfig(
            resources=api_pb2.LinuxContainerResources(cpu_shares=256, memory_limit_in_bytes=64 * 1024 * 1024),
            security_context=api_pb2.LinuxContainerSecurityContext(
                namespace_options=api_pb2.NamespaceOption(network=api_pb2.POD, pid=api_pb2.CONTAINER,
                                                          ipc=api_pb2.POD),
                run_as_user=api_pb2.Int64Value(value=0),
                capabilities=api_pb2.Capability(drop_capabilities=["NET_RAW"]))))


async def test_version_status_and_images(node: CRINode) -> None:
    version = await node.runtime.version()
    assert version.runtime_name == "containerd"
    assert version.runtime_api_version == "v1"
    types = {c.type for c in (await node.runtime.status()).status.conditions}
    assert {"RuntimeReady", "NetworkReady"} <= types

    assert not (await node.images.image_status(BUSYBOX)).HasField("image")
    pulled = await node.images.pull_image(BUSYBOX)
    assert pulled.image_ref.startswith("sha256:")
    status = await node.images.image_status(BUSYBOX)
    assert status.image.id == pulled.image_ref and BUSYBOX in status.image.repo_tags
    listed = await node.images.list_images()
    assert any(image.id == pulled.image_ref for image in listed.images)
    assert (await node.images.image_fs_info()).image_filesystems
    await node.images.remove_image(BUSYBOX)
    assert not (await node.images.image_status(BUSYBOX)).HasField("image")


async def test_pod_lifecycle(node: CRINode) -> None:
    image_ref = (await node.images.pull_image(BUSYBOX)).image_ref
    config = sandbox_config(node, "web")
    response = await node.runtime.run_pod_sandbox(api_pb2.RunPodSandboxRequest(config=config))
    sandbox_id = response.pod_sandbox_id
    assert sandbox_id

    sandbox = (await node.runtime.pod_sandbox_status(sandbox_id)).status
    assert sandbox.state == api_pb2.SANDBOX_READY
    assert sandbox.metadata.name == "web" and sandbox.labels["test"] == node.name
    assert ipaddress.ip_address(sandbox.network.ip) in ipaddress.ip_network(node.subnet)
    assert sandbox.annotations["note"] == "cri integration test"

    app = container_config("app", image_ref, ["sh", "-c", 'echo "hello-from-log $GREETING"; exec sleep 3600'])
    container_id = (await node.runtime.create_container(api_pb2.CreateContainerRequest(
        pod_sandbox_id=sandbox_id, config=app, sandbox_config=config))).container_id
    await node.runtime.start_container(container_id)

    result = await node.runtime.exec_sync(api_pb2.ExecSyncRequest(
        container_id=container_id, cmd=["echo", "hi"], timeout=10))
    assert result.exit_code == 0 and result.stdout == b"hi\n"
    failed = await node.runtime.exec_sync(api_pb2.ExecSyncRequest(
        container_id=container_id, cmd=["sh", "-c", "echo oops >&2; exit 3"], timeout=10))
    assert failed.exit_code == 3 and failed.stderr == b"oops\n"

    status = (await node.runtime.container_status(container_id)).status
    assert status.state == api_pb2.CONTAINER_RUNNING
    assert status.metadata.name == "app" and status.started_at > 0
    assert status.image_ref.startswith("pyk8s.local/busybox@sha256:")  # the repo digest, not the image id
    log_file = Path(config.log_directory) / "app" / "0.log"
    assert status.log_path == str(log_file)
    # CRI log lines: "<RFC3339 time> stdout F <text>"
    expected = "stdout F hello-from-log hello-from-env"
    await eventually(lambda: log_file.exists() and expected in log_file.read_text(), timeout=20)

    running = api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(
        pod_sandbox_id=sandbox_id, label_selector={"io.kubernetes.container.name": "app"},
        state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING)))
    assert [c.id for c in (await node.runtime.list_containers(running)).containers] == [container_id]
    other = api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(
        pod_sandbox_id=sandbox_id, label_selector={"io.kubernetes.container.name": "other"}))
    assert not (await node.runtime.list_containers(other)).containers

    stats = (await node.runtime.container_stats(container_id)).stats
    assert stats.attributes.id == container_id
    exec_url = await node.runtime.exec(api_pb2.ExecRequest(container_id=container_id, cmd=["sh"],
                                                           stdout=True))
    assert exec_url.url.startswith("http")

    # sleep as pid 1 ignores SIGTERM: the runtime sends SIGKILL after the 1 s grace period
    await node.runtime.stop_container(container_id, timeout=1)
    stopped = (await node.runtime.container_status(container_id)).status
    assert stopped.state == api_pb2.CONTAINER_EXITED and stopped.finished_at >= stopped.started_at
    assert not (await node.runtime.list_containers(running)).containers

    await node.runtime.remove_container(container_id)
    with pytest.raises(NotFoundError):
        await node.runtime.container_status(container_id)
    await node.runtime.remove_container(container_id)  # idempotent, as the CRI requires

    await node.runtime.stop_pod_sandbox(sandbox_id)
    assert (await node.runtime.pod_sandbox_status(sandbox_id)).status.state == api_pb2.SANDBOX_NOTREADY
    await node.runtime.remove_pod_sandbox(sandbox_id)
    listed = await node.runtime.list_pod_sandbox(api_pb2.ListPodSandboxRequest(
        filter=api_pb2.PodSandboxFilter(label_selector={"test": node.name})))
    assert not listed.items


async def test_unknown_ids_raise_not_found(node: CRINode) -> None:
    bogus = "0" * 64
    with pytest.raises(NotFoundError) as caught:
        await node.runtime.container_status(bogus)
    assert caught.value.method == "ContainerStatus" and "ContainerStatus" in str(caught.value)
    with pytest.raises(NotFoundError, match="PodSandboxStatus"):
        await node.runtime.pod_sandbox_status(bogus)
    with pytest.raises(NotFoundError, match="StartContainer"):
        await node.runtime.start_container(bogus)
