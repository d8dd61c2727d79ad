"""Bring a whole lab cluster up and down: control plane, nodes, registry.

Layout under the data directory:

    lab.json                 what `up` made (lab name, nodes, process records)
    admin.kubeconfig         for the host's kubectl (server on the bridge address)
    control-plane/           `pyk8s server --disable-agent` data (state.db, pki)
    nodes/<node>/            each agent's data: its containerd root/state/socket, pods, logs
    registry/                the lab's registry front (config, log)
    logs/<process>.log

The control plane runs in the host namespace, bound to the bridge address so
nodes and the host's kubectl both reach it. Each node is a namespace with its
own containerd (started and supervised by its agent), agent and proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import ssl
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.api.errors import StatusError
from controlplane.privatefiles import prepare_data_dir, write_private
from lab import cleanup, network, processes
from lab.network import LabNetwork
from lab.processes import ProcessRecord

STATE_FILE = "lab.json"
OWNERS_DIR = Path("/run/pyk8s/labs")  # <name>: the data dir the running lab of that name was started from
API_PORT = 6443
REGISTRY_PORT = 5000


@dataclass
class LabState:
    """What one `lab up` made: enough for `lab down` to undo all of it."""

    data_dir: Path
    net: LabNetwork
    nodes: list[str] = field(default_factory=list)
    proxy_mode: str = "iptables"
    records: list[ProcessRecord] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def save(self) -> None:
        body = {
            "name": self.net.name, "subnet": self.net.subnet, "cluster_cidr": self.net.cluster_cidr,
            "service_cidr": self.net.service_cidr, "nodes": self.nodes, "proxy_mode": self.proxy_mode,
            "processes": [r.to_dict() for r in self.records],
        }
        write_private(self.data_dir / STATE_FILE, json.dumps(body, indent=2))

    @classmethod
    def load(cls, data_dir: Path) -> LabState | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        body = json.loads(path.read_text())
        net = LabNetwork(body["name"], body["subnet"], body["cluster_cidr"], body["service_cidr"])
        return cls(data_dir, net, list(body["nodes"]), body["proxy_mode"],
                   [ProcessRecord.from_dict(r) for r in body["processes"]])


class LabError(Exception):
    """A lab request that conflicts with what runs or cannot be met; the message says what to do."""


def owner_of(name: str) -> Path | None:
    """The data dir of the lab `name` that this host runs now, if one recorded itself there."""
    try:
        owner = Path((OWNERS_DIR / name).read_text().strip())
    except OSError:
        return None
    try:
        state = LabState.load(owner)
    except (OSError, ValueError, KeyError):
        return None
    return owner if state is not None and state.net.name == name else None


def _record_owner(name: str, data_dir: Path) -> None:
    OWNERS_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(OWNERS_DIR / name, f"{data_dir}\n")


def _forget_owner(name: str, data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        if Path((OWNERS_DIR / name).read_text().strip()) == data_dir:
            (OWNERS_DIR / name).unlink()


@contextlib.contextmanager
def name_lock(name: str) -> Iterator[None]:
    """One `lab up`/`lab down` at a time per lab name."""
    OWNERS_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(OWNERS_DIR / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise LabError(f"another `pyk8s lab` command is working on lab {name!r} ({holder}); wait for it to "
                           "finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
        if not (OWNERS_DIR / name).exists():  # also when the command failed
            _drop_lock_file(name)


def _drop_lock_file(name: str) -> None:
    """Remove the name's lock file once its lab is down, unless a `lab` command holds it right now."""
    try:
        fd = os.open(OWNERS_DIR / f"{name}.lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        (OWNERS_DIR / f"{name}.lock").unlink(missing_ok=True)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def _load_state(data_dir: Path) -> LabState | None:
    try:
        return LabState.load(data_dir)
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{data_dir / STATE_FILE} is not a lab state file ({exc}); remove it or choose another "
                       "--data-dir") from None


def check_up(data_dir: Path, net: LabNetwork) -> None:
    """Refuse a `lab up` that would take over or tear down a lab that another data dir runs."""
    name = net.name
    owner = owner_of(name)
    if owner is not None and owner != data_dir:
        raise LabError(f"lab {name!r} is already running from {owner}; stop it with `pyk8s lab down --data-dir "
                       f"{owner}`, or choose another --name (and --subnet)")
    own = _load_state(data_dir)
    if network.lab_exists(net) and (own is None or own.net.name != name):
        raise LabError(f"a lab named {name!r} already exists on this host (bridge {net.bridge}) but was not started "
                       f"from {data_dir}; remove it with `pyk8s lab down --name {name} --data-dir DIR` (DIR: the "
                       "data dir it was started from), or choose another --name")
    try:
        network.check_subnet(net)
    except RuntimeError as exc:
        raise LabError(str(exc)) from None


def _pyk8s() -> list[str]:
    """How to run the `pyk8s` command with this very interpreter (venv or not)."""
    return [sys.executable, "-m", "pyk8s.cli"]


def write_registry_config(config: Path, address: str, storage_dir: Path) -> Path:
    """A docker-registry config serving the platform's image store on `address` (read-only use)."""
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(
        config, "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage_dir}\n  delete:\n    enabled: false\n"
        f"http:\n  addr: {address}\n"
    )
    return config


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return 200 <= int(resp.status) < 500
    except OSError as exc:
        code = getattr(exc, "code", None)
        return code is not None and int(code) < 500


def up(data_dir: Path, nodes: int, *, name: str = "lab", proxy_mode: str = "iptables",
       subnet: str = "10.99.0.0/24", registry_storage: Path = Path("/var/lib/pyk8s/registry/storage"),
       timeout: float = 180.0, log: object = print, server_args: Sequence[str] = ()) -> LabState:
    """Create the lab; leftovers of an earlier run under `data_dir` are removed first.

    Raises LabError, before anything is changed, when the request conflicts with
    what runs: a lab of that name started from another data dir, a subnet the
    host routes elsewhere, another `lab` command at work on the same name.
    """
    data_dir = data_dir.resolve()
    try:
        net = LabNetwork(name=name, subnet=subnet)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    if nodes < 1:
        raise LabError(f"--nodes {nodes}: a lab needs at least one node")
    with name_lock(name):
        check_up(data_dir, net)
        down(data_dir, name=name)
        return _up(data_dir, net, nodes, proxy_mode=proxy_mode, registry_storage=registry_storage,
                   timeout=timeout, log=log, server_args=server_args)


def _up(data_dir: Path, net: LabNetwork, nodes: int, *, proxy_mode: str, registry_storage: Path, timeout: float,
        log: object, server_args: Sequence[str]) -> LabState:
    name = net.name
    prepare_data_dir(data_dir, skip=("control-plane", "nodes"))  # 0700; the server and agents tighten their own
    state = LabState(data_dir, net, [f"node{i}" for i in range(1, nodes + 1)], proxy_mode)
    state.save()
    _record_owner(name, data_dir)
    say = log if callable(log) else print
    try:
        network.create_bridge(net)
        for index, node in enumerate(state.nodes, start=1):
            network.add_node(net, node, index)
        say(f"network: bridge {net.bridge} {net.gateway}/{net.prefixlen}, nodes {', '.join(state.nodes)}")

        logs = data_dir / "logs"
        registry = shutil.which("docker-registry")
        if registry and registry_storage.exists():
            config = write_registry_config(data_dir / "registry" / "config.yml", f"{net.gateway}:{REGISTRY_PORT}",
                                           registry_storage)
            state.records.append(processes.spawn("registry", [registry, "serve", str(config)],
                                                 logs / "registry.log"))
        mirror = f"pyk8s.local=http://{net.gateway}:{REGISTRY_PORT}"

        cp_dir = data_dir / "control-plane"
        (cp_dir / "admin.kubeconfig").unlink(missing_ok=True)  # only the kubeconfig this run's server writes counts
        state.records.append(processes.spawn("server", [
            *_pyk8s(), "server", "--data-dir", str(cp_dir), "--bind-address", net.gateway,
            "--secure-port", str(API_PORT), "--cluster-cidr", net.cluster_cidr,
            "--service-cidr", net.service_cidr, "--disable-agent", *server_args,
        ], logs / "server.log"))
        state.save()
        ready_url = f"https://{net.gateway}:{API_PORT}/readyz"
        server = state.records[-1]

        def server_ready() -> bool:
            if server.alive() is None:
                raise LabError(f"the lab's API server exited: {_last_line(logs / 'server.log')}; see "
                               f"{logs / 'server.log'}")
            return (cp_dir / "admin.kubeconfig").exists() and _http_ok(ready_url)

        if not processes.wait_until(server_ready, timeout):
            raise LabError(f"the API server did not become ready in {timeout:g}s; see {logs / 'server.log'}")
        write_private(state.kubeconfig, (cp_dir / "admin.kubeconfig").read_bytes())
        say(f"control plane: https://{net.gateway}:{API_PORT}")

        for index, node in enumerate(state.nodes, start=1):
            ns_path = net.netns_path(node)
            node_dir = data_dir / "nodes" / node
            state.records.append(processes.spawn(f"agent-{node}", [
                *_pyk8s(), "agent", "--kubeconfig", str(state.kubeconfig), "--node-name", node,
                "--node-ip", net.node_ip(index), "--data-dir", str(node_dir), "--registry-mirror", mirror,
                "--cgroup-root", f"/pyk8s-{net.name}/{node}", "--cluster-cidr", net.cluster_cidr,
            ], logs / f"agent-{node}.log", netns_path=ns_path))
            state.records.append(processes.spawn(f"proxy-{node}", [
                *_pyk8s(), "proxy", "--kubeconfig", str(state.kubeconfig), "--node-name", node,
                "--mode", proxy_mode, "--cluster-cidr", net.cluster_cidr,
            ], logs / f"proxy-{node}.log", netns_path=ns_path))
            state.save()
        if not processes.wait_until(lambda: _nodes_ready(state) == len(state.nodes), timeout):
            raise LabError(f"not every node became Ready in {timeout:g}s; see the logs in {logs}")
        say(f"nodes Ready: {len(state.nodes)}")
        return state
    except BaseException:
        down(data_dir, name=name)
        raise


def _last_line(path: Path) -> str:
    """The last non-empty line of a log (where a failed process says why), credentials masked."""
    from pyk8s.redact import redact

    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return redact(lines[-1].strip())[:300]
    return "no log"


def _nodes_ready(state: LabState) -> int:
    """How many nodes report Ready=True, asked through the project's own client."""
    return asyncio.run(_count_ready_nodes(state.kubeconfig))


async def _count_ready_nodes(kubeconfig: Path) -> int:
    from controlplane.api import resources
    from controlplane.client import Client

    try:
        async with Client.from_kubeconfig(kubeconfig) as client:
            nodes = await asyncio.wait_for(client.list(resources.NODES), 10)
    except (TimeoutError, OSError, StatusError):
        return 0
    return sum(
        1 for node in nodes.get("items", [])
        for cond in node.get("status", {}).get("conditions", [])
        if cond.get("type") == "Ready" and cond.get("status") == "True"
    )


def down(data_dir: Path, *, name: str = "lab") -> None:
    """Stop and remove everything a lab made under `data_dir`; safe to call at any time.

    With no lab recorded under `data_dir`, leftovers of a lab named `name` are
    removed, unless a running lab of that name was started from another data dir:
    that is refused (LabError), and nothing is touched.
    """
    data_dir = data_dir.resolve()
    state = _load_state(data_dir)
    if state is None:
        owner = owner_of(name)
        if owner is not None and owner != data_dir:
            raise LabError(f"lab {name!r} runs from {owner}, not {data_dir}; stop it with `pyk8s lab down "
                           f"--data-dir {owner}`")
    net = state.net if state else LabNetwork(name=name)
    if state:
        # Agents first (SIGKILL: their containerd keeps running, and no agent is left to
        # recreate what goes next), then the pods through each node's own containerd, so
        # that sandboxes and their network namespaces are released by the runtime that
        # made them, then every other process.
        agents = [r for r in state.records if r.label.startswith("agent-")]
        processes.kill_all([p for r in agents if (p := r.alive()) is not None])
        cleanup.remove_pods(data_dir / "nodes")
        processes.stop([r for r in state.records if r not in agents])
    cleanup.remove_leftovers(data_dir)
    cleanup.remove_empty_cgroups(f"pyk8s-{net.name}")
    network.teardown(net)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    _forget_owner(net.name, data_dir)
    if not (OWNERS_DIR / net.name).exists():
        _drop_lock_file(net.name)


def status(data_dir: Path) -> dict[str, object]:
    state = _load_state(data_dir.resolve())
    if state is None:
        return {"running": False}
    procs = {r.label: ("running" if r.alive() else "stopped") for r in state.records}
    return {
        "running": True, "name": state.net.name, "kubeconfig": str(state.kubeconfig),
        "api": f"https://{state.net.gateway}:{API_PORT}", "nodes": {
            node: {"ip": state.net.node_ip(i), "netns": state.net.node_netns(node)}
            for i, node in enumerate(state.nodes, start=1)
        },
        "processes": procs, "nodes_ready": _nodes_ready(state),
    }


def exec_in_node(data_dir: Path, node: str, argv: list[str]) -> int:
    state = _load_state(data_dir.resolve())
    if state is None:
        raise LabError(f"no lab runs from {data_dir}; start one with `pyk8s lab up --data-dir {data_dir}`")
    if node not in state.nodes:
        raise LabError(f"lab {state.net.name!r} has no node {node!r}; its nodes: {', '.join(state.nodes)}")
    os.execvp("nsenter", ["nsenter", f"--net={state.net.netns_path(node)}", "--", *argv])
    return 0  # not reached

