"""The Node object: registration, the Lease heartbeat and status on change.

Like upstream, the agent renews its `kube-node-lease` Lease every 10 s (cheap,
what the node lifecycle controller watches) and writes the Node's status only
when something in it changed, or every five minutes as a report. Capacity comes
from the machine (psutil), readiness from the runtime's own conditions and from
whether the pod network is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KUBELET_VERSION = "v1.31.0-pyk8s"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def _read(path: str) -> str:
    with contextlib.suppress(OSError):
        return Path(path).read_text().strip()
    return ""


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def capacity(max_pods: int, data_dir: Path) -> Obj:
    disk = psutil.disk_usage(str(data_dir))
    return {"cpu": str(psutil.cpu_count() or 1), "memory": f"{psutil.virtual_memory().total // 1024}Ki",
            "pods": str(max_pods), "ephemeral-storage": f"{disk.total // 1024}Ki",
            "hugepages-2Mi": "0", "hugepages-1Gi": "0"}


def _condition(ctype: str, ok: bool, reason: str, message: str, previous: list[Obj], heartbeat: str) -> Obj:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    transition = old.get("lastTransitionTime") if old and old.get("status") == status else heartbeat
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": transition}


class NodeStatusReporter:
    """Registers the node, renews its Lease, keeps its status true."""

    def __init__(self, client: Client, *, node_name: str, node_ip: str, data_dir: Path, max_pods: int,
                 kubelet_port: int, labels: dict[str, str], taints: list[dict[str, str]],
                 runtime_info: Callable[[], Awaitable[tuple[str, dict[str, tuple[bool, str, str]]]]],
                 network_ready: Callable[[], tuple[bool, str]],
                 images: Callable[[], Awaitable[list[Obj]]] | None = None,
                 status_frequency: float = 10.0, report_frequency: float = 300.0,
                 lease_duration: int = 40) -> None:
        self.client = client
        self.node_name = node_name
        self.node_ip = node_ip
        self.data_dir = data_dir
        self.max_pods = max_pods
        self.kubelet_port = kubelet_port
        self.labels = labels
        self.taints = taints
        self.runtime_info = runtime_info
        self.network_ready = network_ready
        self.images = images
        self.status_frequency = status_frequency
        self.report_frequency = report_frequency
        self.lease_duration = lease_duration
        self.node: Obj | None = None
        self._last_reported: Obj | None = None
        self._last_report_time = 0.0
        self.registered = asyncio.Event()

    def node_object(self) -> Obj:
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": _ARCH.get(platform.machine(), platform.machine()),
                  "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": _ARCH.get(platform.machine(), platform.machine()), **self.labels}
        spec: Obj = {}
        if self.taints:
            spec["taints"] = self.taints
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels,
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": spec}

    async def status(self, previous: list[Obj]) -> Obj:
        heartbeat = meta.now_rfc3339()
        runtime_version, conditions = await self.runtime_info()
        runtime_ok, runtime_reason, runtime_message = conditions.get("RuntimeReady", (False, "", "no status"))
        network_ok, network_message = self.network_ready()
        ready = runtime_ok and network_ok
        if ready:
            ready_reason, ready_message = "KubeletReady", "kubelet is posting ready status"
        elif not runtime_ok:
            ready_reason = "KubeletNotReady"
            ready_message = f"container runtime is down: {runtime_reason} {runtime_message}".strip()
        else:
            ready_reason = "KubeletNotReady"
            ready_message = f"container runtime network not ready: NetworkReady=false {network_message}".strip()
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.data_dir))
        cap = capacity(self.max_pods, self.data_dir)
        status: Obj = {
            "capacity": cap, "allocatable": dict(cap),
            "conditions": [
                _condition("MemoryPressure", memory.percent >= 95, "KubeletHasSufficientMemory" if memory.percent < 95
                           else "KubeletHasInsufficientMemory", "kubelet has sufficient memory available"
                           if memory.percent < 95 else "kubelet has insufficient memory available", previous,
                           heartbeat),
                _condition("DiskPressure", disk.percent >= 90, "KubeletHasNoDiskPressure" if disk.percent < 90
                           else "KubeletHasDiskPressure", "kubelet has no disk pressure" if disk.percent < 90
                           else "kubelet has disk pressure", previous, heartbeat),
                _condition("PIDPressure", False, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
                           previous, heartbeat),
                _condition("Ready", ready, ready_reason, ready_message, previous, heartbeat),
            ],
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                "osImage": os_image(), "containerRuntimeVersion": runtime_version,
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux", "architecture": _ARCH.get(platform.machine(), platform.machine()),
            },
        }
        if self.images is not None:
            status["images"] = await self.images()
        return status

    async def register(self) -> Obj:
        """Create the Node, or adopt the existing one (labels merged); retried until the API answers."""
        delay = 0.5
        while True:
            try:
                try:
                    self.node = await self.client.create(resources.NODES, self.node_object())
                    log.info("node %s registered", self.node_name)
                except StatusError as exc:
                    if exc.code != 409:
                        raise
                    self.node = await self.client.patch(resources.NODES, self.node_name,
                                                        {"metadata": {"labels": self.node_object()["metadata"]["labels"]}})
                await self.update_status(force=True)
                self.registered.set()
                return self.node
            except (StatusError, OSError) as exc:
                log.warning("registering node %s: %s (retrying)", self.node_name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)

    async def update_status(self, force: bool = False) -> None:
        node = await self.client.get(resources.NODES, self.node_name)
        previous = (node.get("status") or {}).get("conditions") or []
        status = await self.status(previous)
        comparable = _strip_heartbeats(status)
        due = time.monotonic() - self._last_report_time >= self.report_frequency
        if not force and not due and comparable == self._last_reported:
            self.node = node
            return
        self.node = await self.client.patch(resources.NODES, self.node_name, {"status": status},
                                            patch_type="merge", subresource="status")
        self._last_reported = comparable
        self._last_report_time = time.monotonic()

    async def renew_lease(self) -> None:
        now = meta.now_micro()
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": self.lease_duration, "renewTime": now}
        try:
            lease = await self.client.get(resources.LEASES, self.node_name, "kube-node-lease")
        except StatusError as exc:
            if exc.code != 404:
                raise
            owner = []
            if self.node is not None:
                owner = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                          "uid": self.node["metadata"]["uid"]}]
            await self.client.create(resources.LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": "kube-node-lease", "ownerReferences": owner},
                "spec": spec}, "kube-node-lease")
            return
        lease["spec"] = {**(lease.get("spec") or {}), **spec}
        await self.client.update(resources.LEASES, lease)

    async def run(self, stop: asyncio.Event) -> None:
        await self.register()
        next_status = time.monotonic() + self.status_frequency
        while not stop.is_set():
            try:
                await self.renew_lease()
            except (StatusError, OSError) as exc:
                log.warning("renewing the node lease: %s", exc)
            if time.monotonic() >= next_status:
                try:
                    await self.update_status()
                except (StatusError, OSError) as exc:
                    log.warning("updating node status: %s", exc)
                next_status = time.monotonic() + self.status_frequency
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.status_frequency)


def _strip_heartbeats(status: Obj) -> Obj:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                         for c in status.get("conditions") or []]
    return out


def default_node_ip() -> str:
    """The address of the interface that holds the default route, like the kubelet's guess."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: UDP connect only picks a route
        return str(probe.getsockname()[0])
    return "127.0.0.1"


def hostname() -> str:
    return os.uname().nodename.lower()
