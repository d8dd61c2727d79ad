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
import json
import os
import shutil
import ssl
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.api.errors import StatusError
from lab import cleanup, network, processes
from lab.network import LabNetwork
from lab.processes import ProcessRecord

STATE_FILE = "lab.json"
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
        tmp = self.data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(body, indent=2))
        tmp.replace(self.data_dir / STATE_FILE)

    @classmethod
    def load(cls, data_dir: Path) -> LabState | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        body = json.loads(path.read_text())
        net = LabNetwork(body["name"], body["subnet"], body["cluster_cidr"], body["service_cidr"])
        return cls(data_dir, net, list(body["nodes"]), body["proxy_mode"],
                   [ProcessRecord.from_dict(r) for r in body["processes"]])


def _pyk8s() -> list[str]:
    """How to run the `pyk8s` command with this very interpreter (venv or not)."""
    return [sys.executable, "-m", "pyk8s.cli"]


def write_registry_config(config: Path, address: str, storage_dir: Path) -> Path:
    """A docker-registry config serving the platform's image store on `address` (read-only use)."""
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "version: 0.1\n"
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
    """Create the lab; leftovers of an earlier run under `data_dir` are removed first."""
    data_dir = data_dir.resolve()
    down(data_dir, name=name)
    data_dir.mkdir(parents=True, exist_ok=True)
    net = LabNetwork(name=name, subnet=subnet)
    state = LabState(data_dir, net, [f"node{i}" for i in range(1, nodes + 1)], proxy_mode)
    state.save()
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
        state.records.append(processes.spawn("server", [
            *_pyk8s(), "server", "--data-dir", str(cp_dir), "--bind-address", net.gateway,
            "--secure-port", str(API_PORT), "--cluster-cidr", net.cluster_cidr,
            "--service-cidr", net.service_cidr, "--disable-agent", *server_args,
        ], logs / "server.log"))
        state.save()
        ready_url = f"https://{net.gateway}:{API_PORT}/readyz"
        if not processes.wait_until(lambda: _http_ok(ready_url), timeout):
            raise RuntimeError(f"the API server did not become ready; see {logs / 'server.log'}")
        shutil.copy(cp_dir / "admin.kubeconfig", state.kubeconfig)
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
            raise RuntimeError(f"not every node became Ready; see the logs in {logs}")
        say(f"nodes Ready: {len(state.nodes)}")
        return state
    except BaseException:
        down(data_dir, name=name)
        raise


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
    """Stop and remove everything a lab made under `data_dir`; safe to call at any time."""
    data_dir = data_dir.resolve()
    state = LabState.load(data_dir)
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


def status(data_dir: Path) -> dict[str, object]:
    state = LabState.load(data_dir.resolve())
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
    state = LabState.load(data_dir.resolve())
    if state is None or node not in state.nodes:
        raise SystemExit(f"no lab node {node!r} under {data_dir}")
    os.execvp("nsenter", ["nsenter", f"--net={state.net.netns_path(node)}", "--", *argv])
    return 0  # not reached

