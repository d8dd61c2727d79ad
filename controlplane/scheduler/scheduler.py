"""The scheduler loop: one pending pod at a time, filter -> score -> assume, then bind in the background.

Pods and nodes come from informers and are folded into the scheduler's cache
(`cache.Cluster`) as they change, so a decision reads running totals instead
of re-summing pods. A placed pod is *assumed* on its node at once and its
binding is posted by a task of its own (upstream's binding cycle): the loop
goes on to the next pod without waiting for the API server, and a failed
binding forgets the assumed pod and queues it again. A pod that fits nowhere
gets `PodScheduled=False` with upstream's message and a FailedScheduling
event, and waits until a node or pod changes (or a minute passes).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from controlplane.api import meta, resources
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers.base import Controller
from controlplane.scheduler.cache import TERMINAL, Cluster, PodInfo
from controlplane.scheduler.plugins import find_feasible, nodes_to_find, select_host, unschedulable_message

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"
RETRY_UNSCHEDULABLE_SECONDS = 60.0


def _pending(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in TERMINAL)


class Scheduler(Controller):
    name = "scheduler"

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self.pods = Informer(client, resources.PODS)
        self.nodes = Informer(client, resources.NODES)
        self.namespaces = Informer(client, resources.NAMESPACES)  # their labels, for affinity namespaceSelectors
        self.events = EventRecorder(client, SCHEDULER_NAME)
        self.cache = Cluster()
        self.unschedulable: set[str] = set()
        self._next_start = 0  # rotates where the search for feasible nodes begins
        self.tie_breaker = random.Random()  # picks among equally scored nodes, as upstream
        self._binding: set[asyncio.Task[None]] = set()
        self.informers = [self.namespaces, self.nodes, self.pods]
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda _old, new: self._pod_changed(new),
                              on_delete=self._pod_deleted)
        self.nodes.add_handler(on_add=self._node_changed, on_update=lambda _old, new: self._node_changed(new),
                               on_delete=self._node_deleted)
        self.namespaces.add_handler(on_add=self._namespace_changed,
                                    on_update=lambda _old, new: self._namespace_changed(new),
                                    on_delete=self._namespace_deleted)

    # -- informer events -> cache and queue ---------------------------------------------

    def _node_changed(self, node: Obj) -> None:
        self.cache.set_node(node)
        self._cluster_changed()

    def _namespace_changed(self, namespace: Obj) -> None:
        name, labels = namespace["metadata"]["name"], dict(namespace["metadata"].get("labels") or {})
        if self.cache.namespace_labels.get(name) != labels:
            self.cache.namespace_labels[name] = labels
            self._cluster_changed()  # a namespaceSelector may match (or stop matching) it now

    def _namespace_deleted(self, namespace: Obj) -> None:
        self.cache.namespace_labels.pop(namespace["metadata"]["name"], None)

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    def _pod_changed(self, pod: Obj) -> None:
        key = meta.key_of(pod)
        was_placed = key in self.cache.where
        self.cache.update_pod(pod)
        if _pending(pod):
            if key not in self.unschedulable and not self.cache.is_assumed(key):
                self.queue.add(key)
            return
        self.unschedulable.discard(key)
        if was_placed and key not in self.cache.where:
            self._cluster_changed()  # a pod that finished frees its node

    def _pod_deleted(self, pod: Obj) -> None:
        key = meta.key_of(pod)
        self.cache.remove_pod(key)
        self.unschedulable.discard(key)
        self._cluster_changed()  # freed resources may fit a waiting pod

    def _cluster_changed(self) -> None:
        for key in list(self.unschedulable):
            self.unschedulable.discard(key)
            self.queue.add(key)

    # -- the scheduling cycle -------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        """Schedule one pending pod (by key)."""
        pod = self.pods.get_by_key(key)
        if pod is None or not _pending(pod) or self.cache.is_assumed(key):
            return None
        node, message = self.schedule(PodInfo(pod))
        if node is None:
            await self._unschedulable(pod, message)
            return None
        task = asyncio.create_task(self._bind(pod, node))
        self._binding.add(task)
        task.add_done_callback(self._binding.discard)
        await asyncio.sleep(0)  # let bindings and the API server in this process move between pods
        return None

    def schedule(self, pod: PodInfo) -> tuple[str | None, str]:
        """The scheduling cycle: find feasible nodes, score them, assume the pod on the best one.
        Returns (node, "") or (None, the Unschedulable message)."""
        total = len(self.cache)
        start = self._next_start % max(total, 1)
        try:
            feasible, reasons, checked = find_feasible(pod, self.cache, start, nodes_to_find(total))
            self._next_start = (start + checked) % max(total, 1)
            if not feasible:
                return None, unschedulable_message(total, reasons)
            best = select_host(pod, self.cache, feasible, self.tie_breaker)
        finally:
            pod.cycle.clear()  # the PodInfo stays in the cache; what the cycle computed does not
        self.cache.assume(pod, best.name)
        return best.name, ""

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await super().run(stop)
        finally:
            for task in list(self._binding):
                task.cancel()
            await asyncio.gather(*self._binding, return_exceptions=True)

    async def _bind(self, pod: Obj, node: str) -> None:
        md = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"], "namespace":
                   md["namespace"], "uid": md.get("uid")}, "target": {"apiVersion": "v1", "kind": "Node",
                                                                      "name": node}}
        key = meta.key_of(pod)
        try:
            await self.client.create_subresource(resources.PODS, md["name"], "binding", binding, md["namespace"])
        except Exception as exc:  # any failure: the assumption must not outlive it
            log.info("binding %s to %s failed: %s; retrying", key, node, exc)
            self.cache.forget(key)
            self._cluster_changed()  # what the pod was assumed to take is free again
            self.queue.add_rate_limited(key)
            return
        try:
            await self.events.emit(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")
        except Exception as exc:  # best effort, as the recorder itself is
            log.debug("Scheduled event for %s not recorded: %s", key, exc)

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
