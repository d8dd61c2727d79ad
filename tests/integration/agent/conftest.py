"""A one-node cluster for agent tests: control plane on a lab bridge, the agent in a node namespace.

The control plane (API server, controllers, scheduler) runs in this process,
bound to the bridge address; the agent runs as `pyk8s agent` inside the node's
network namespace with its own containerd, exactly as in the lab. A registry
front on the bridge serves the platform's images to the node. Everything —
pods, containerd, mounts, cgroups, the namespace and the bridge — is removed
afterwards, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controlplane.api import resources
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client
from controlplane.controllers.manager import run_controller_manager
from controlplane.scheduler.scheduler import run_scheduler
from lab import cleanup, network, processes
from lab.cluster import write_registry_config
from lab.network import LabNetwork
from lab.processes import ProcessRecord
from tests.helpers import eventually

REGISTRY_STORAGE = Path("/var/lib/pyk8s/registry/storage")
Obj = dict[str, Any]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the agent needs root (containerd, network namespaces)"
    for tool in ("containerd", "runc", "nsenter", "docker-registry"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup-platform.sh installs it)"
    if not REGISTRY_STORAGE.is_dir():
        return f"no image store at {REGISTRY_STORAGE} (scripts/setup-platform.sh builds it)"
    return None


@dataclass
class NodeEnv:
    net: LabNetwork
    node: str
    node_ip: str
    base: Path
    server: APIServer
    client: Client
    records: list[ProcessRecord] = field(default_factory=list)
    agent: ProcessRecord | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.server.admin_kubeconfig

    @property
    def data_dir(self) -> Path:
        return self.base / "node"

    def start_agent(self) -> None:
        argv = [sys.executable, "-m", "pyk8s.cli", "agent", "--kubeconfig", str(self.kubeconfig),
                "--node-name", self.node, "--node-ip", self.node_ip, "--data-dir", str(self.data_dir),
                "--registry-mirror", f"pyk8s.local=http://{self.net.gateway}:5000",
                "--cgroup-root", f"/pyk8s-{self.net.name}"]
        self.agent = processes.spawn("agent", argv, self.base / "agent.log", netns_path=self.net.netns_path(self.node))

    def kill_agent(self) -> None:
        """SIGKILL the agent alone: its containerd and the pods stay, as after a crash."""
        if self.agent is not None and (proc := self.agent.alive()) is not None:
            for child in proc.children(recursive=True):
                if child.name() != "containerd" and "containerd-shim" not in child.name():
                    with contextlib.suppress(Exception):
                        child.kill()
            proc.kill()
            proc.wait(10)

    def agent_log(self) -> str:
        path = self.base / "agent.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    async def pod(self, name: str, namespace: str = "default") -> Obj:
        return await self.client.get(resources.PODS, name, namespace)

    async def wait_pod(self, name: str, predicate: Any, timeout: float = 60.0, namespace: str = "default") -> Obj:
        found: dict[str, Obj] = {}

        async def check() -> bool:
            try:
                found["pod"] = await self.pod(name, namespace)
            except Exception:
                return False
            return bool(predicate(found["pod"]))

        try:
            await eventually(check, timeout=timeout, interval=0.25)
        except AssertionError:
            raise AssertionError(f"pod {name} never matched; last: {found.get('pod', {}).get('status')}\n"
                                 f"agent log:\n{self.agent_log()}") from None
        return found["pod"]

    async def events(self, name: str, namespace: str = "default") -> list[Obj]:
        items = (await self.client.list(resources.EVENTS, namespace))["items"]
        return [e for e in items if e["involvedObject"].get("name") == name]

    def crictl(self, *args: str) -> str:
        socket = self.data_dir / "containerd" / "containerd.sock"
        result = subprocess.run(["ctr", "--address", str(socket), "-n", "k8s.io", *args], capture_output=True,
                                text=True, timeout=30)
        return result.stdout


def container_state(pod: Obj, name: str) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == name:
            return status
    return {}


def running(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and all(
        "running" in (s.get("state") or {}) for s in pod["status"].get("containerStatuses") or [])


@pytest.fixture
async def node_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NodeEnv]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    name = "a" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=4))
    net = LabNetwork(name=name, subnet=await asyncio.to_thread(network.free_subnet, "10.98"))
    base = Path(f"/tmp/pyk8s-agent-{name}")  # short: unix socket paths are limited to 108 bytes
    os.makedirs(base)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    records: list[ProcessRecord] = []
    server: APIServer | None = None
    client: Client | None = None
    env: NodeEnv | None = None
    try:
        await asyncio.to_thread(network.create_bridge, net)  # pyroute2's sync API wants no running loop
        node_ip = await asyncio.to_thread(network.add_node, net, "n1", 1)
        config = write_registry_config(base / "registry.yml", f"{net.gateway}:5000", REGISTRY_STORAGE)
        records.append(processes.spawn("registry", ["docker-registry", "serve", str(config)], base / "registry.log"))
        server = APIServer(APIServerConfig(data_dir=base / "server", bind_address=net.gateway, secure_port=0,
                                           cluster_cidr=net.cluster_cidr, service_cidr=net.service_cidr))
        await server.start()
        client = Client.from_kubeconfig(server.admin_kubeconfig)
        tasks.append(asyncio.create_task(run_controller_manager(client, stop=stop, cluster_cidr=net.cluster_cidr)))
        tasks.append(asyncio.create_task(run_scheduler(client, stop=stop)))
        env = NodeEnv(net, "n1", node_ip, base, server, client, records)
        env.start_agent()

        async def node_ready() -> bool:
            try:
                node = await client.get(resources.NODES, "n1")
            except Exception:
                return False
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (node.get("status") or {}).get("conditions") or [])

        try:
            await eventually(node_ready, timeout=90, interval=0.5)
        except AssertionError:
            raise AssertionError(f"node never Ready; agent log:\n{env.agent_log()}") from None
        yield env
    finally:
        if env is not None:
            env.kill_agent()  # first, so that it cannot recreate what is removed next
        await asyncio.to_thread(cleanup.remove_pods, base)
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if client is not None:
            await client.close()
        if server is not None:
            await server.stop()
        processes.stop(records, grace=5)
        await asyncio.to_thread(cleanup.remove_leftovers, base)
        await asyncio.to_thread(cleanup.remove_empty_cgroups, f"pyk8s-{net.name}")
        await asyncio.to_thread(network.teardown, net)
        shutil.rmtree(base, ignore_errors=True)
