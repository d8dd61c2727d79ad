"""The scheduler loop: one pending pod at a time, filter -> score -> bind.

Pods and nodes come from informers. A bound pod is "assumed" on its node at
once, so the next decision already counts it even before the watch shows the
binding. A pod that fits nowhere gets `PodScheduled=False` with upstream's
message and a FailedScheduling event, and waits until a node or pod changes
(or a minute passes) before it is tried again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers.base import Controller
from controlplane.scheduler.plugins import (
    ClusterView,
    NodeInfo,
    filter_node,
    nodes_to_find,
    score_node,
    unschedulable_message,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"
RETRY_UNSCHEDULABLE_SECONDS = 60.0


def _pending(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


class Scheduler(Controller):
    name = "scheduler"

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self.pods = Informer(client, resources.PODS)
        self.nodes = Informer(client, resources.NODES)
        self.events = EventRecorder(client, SCHEDULER_NAME)
        self.unschedulable: set[str] = set()
        self.assumed: dict[str, tuple[str, Obj]] = {}  # pod key -> (node, pod as bound)
        self._next_start = 0  # rotates where the search for feasible nodes begins
        self._binding: set[asyncio.Task[None]] = set()
        # NodeInfos survive between cycles; a node is rebuilt only when it or its pods change.
        self._infos: dict[str, NodeInfo] = {}
        self._dirty: set[str] = set()
        self.informers = [self.nodes, self.pods]
        self.pods.add_index("node", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.nodes.add_handler(on_add=self._node_changed, on_update=lambda _o, n: self._node_changed(n),
                               on_delete=self._node_changed)

    def _node_changed(self, node: Obj) -> None:
        self._dirty.add(node["metadata"]["name"])
        self._cluster_changed()

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._dirty.add((old.get("spec") or {}).get("nodeName") or "")
        self._pod_changed(new)

    def _pod_changed(self, pod: Obj) -> None:
        self._dirty.add((pod.get("spec") or {}).get("nodeName") or "")
        key = meta.key_of(pod)
        if _pending(pod):
            if key not in self.unschedulable:
                self.queue.add(key)
        else:
            self.unschedulable.discard(key)
            if (pod.get("spec") or {}).get("nodeName"):
                self.assumed.pop(key, None)  # the cache now shows the binding

    def _pod_deleted(self, pod: Obj) -> None:
        self._dirty.add((pod.get("spec") or {}).get("nodeName") or "")
        key = meta.key_of(pod)
        self.assumed.pop(key, None)
        self.unschedulable.discard(key)
        self._cluster_changed()  # freed resources may fit a waiting pod

    def _cluster_changed(self, *_: Obj) -> None:
        for key in list(self.unschedulable):
            self.unschedulable.discard(key)
            self.queue.add(key)

    def node_infos(self) -> list[NodeInfo]:
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        for name in [n for n in self._infos if n not in nodes]:
            del self._infos[name]
        assumed_by_node: dict[str, list[Obj]] = {}
        for key, (node_name, pod) in self.assumed.items():
            current = self.pods.get_by_key(key)
            if current is not None and not (current.get("spec") or {}).get("nodeName"):
                assumed_by_node.setdefault(node_name, []).append(pod)
        for name, node in nodes.items():
            if name in self._dirty or name not in self._infos:
                pods = [p for p in self.pods.by_index("node", name)
                        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
                self._infos[name] = NodeInfo(node, pods + assumed_by_node.get(name, []))
        self._dirty.clear()
        return ClusterView(list(self._infos.values())).infos

    async def sync(self, key: str) -> float | None:
        """Schedule one pending pod (by key)."""
        pod = self.pods.get_by_key(key)
        if pod is None or not _pending(pod) or key in self.assumed:
            return None
        infos = self.node_infos()
        reasons: dict[str, int] = {}
        feasible: list[NodeInfo] = []
        enough = nodes_to_find(len(infos))
        start = self._next_start % max(len(infos), 1)
        checked = 0
        for info in infos[start:] + infos[:start]:
            if len(feasible) >= enough:
                break
            checked += 1
            why = filter_node(pod, info)
            if why:
                for reason in why:
                    reasons[reason] = reasons.get(reason, 0) + 1
            else:
                feasible.append(info)
        if not feasible:
            await self._unschedulable(pod, unschedulable_message(len(infos), reasons))
            return None
        self._next_start = start + checked
        best = max(feasible, key=lambda info: (score_node(pod, info), info.name))
        # Assume now, bind in the background (upstream's binding cycle): the next pod is
        # scheduled against the assumed state without waiting for the API round trip.
        self.assumed[key] = (best.name, {**pod, "spec": {**pod["spec"], "nodeName": best.name}})
        self._dirty.add(best.name)
        task = asyncio.create_task(self._bind(pod, best.name))
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)
        return None

    async def _bind(self, pod: Obj, node: str) -> None:
        md = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"], "namespace":
                   md["namespace"], "uid": md.get("uid")}, "target": {"apiVersion": "v1", "kind": "Node",
                                                                      "name": node}}
        key = meta.key_of(pod)
        try:
            await self.client.create_subresource(resources.PODS, md["name"], "binding", binding, md["namespace"])
        except (StatusError, OSError) as exc:
            log.info("binding %s to %s failed: %s; retrying", key, node, exc)
            self.assumed.pop(key, None)
            self._dirty.add(node)
            self.queue.add_rate_limited(key)
            return
        await self.events.emit(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        key = meta.key_of(pod)
        self.unschedulable.add(key)
        self.queue.add_after(key, RETRY_UNSCHEDULABLE_SECONDS)
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        old = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
                   None)
        if old and old.get("message") == message and old.get("status") == "False":
            return
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                           "lastProbeTime": None, "lastTransitionTime": meta.now_rfc3339()})
        md = pod["metadata"]
        await self.client.patch(resources.PODS, md["name"], {"status": {"conditions": conditions}}, md["namespace"],
                                subresource="status")
        await self.events.emit(pod, "Warning", "FailedScheduling", message)


async def run_scheduler(client: Client, *, stop: asyncio.Event) -> None:
    await Scheduler(client).run(stop)
