"""ReplicaSet controller: keep `spec.replicas` pods of the template running.

Pods are matched by selector and owned through a controller ownerReference:
matching orphans are adopted, owned pods that stop matching are released.
Creations and deletions in flight are remembered ("expectations") until the
pod informer shows them, so a burst of syncs never creates a pod twice. On
scale-down the least useful pods go first: unscheduled, then pending, then
not ready, then the newest.
"""

from __future__ import annotations

import time
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.api.resources import ResourceType
from controlplane.api.selectors import LabelSelector
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers import stored
from controlplane.controllers.base import Controller

Obj = dict[str, Any]
EXPECTATION_TTL = 30.0
BURST = 50  # at most this many pods created or deleted per sync, like upstream's slow start cap


def is_active(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def deletion_rank(pod: Obj) -> tuple[int, int, int, str]:
    """Sort key: the pod to delete first sorts first (upstream's ActivePods ordering, simplified)."""
    status = pod.get("status") or {}
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
    ready = 1 if meta.is_pod_ready(pod) else 0
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    # Newer pods first: negate the timestamp order by sorting on the inverted string below.
    created = pod["metadata"].get("creationTimestamp") or ""
    inverted = "".join(chr(0x10FFFF - ord(ch)) for ch in created)
    return (scheduled, phase, ready * 1000 - restarts, inverted)


def pod_from_template(owner: Obj, template: Obj) -> Obj:
    tmeta = template.get("metadata") or {}
    return {
        "metadata": {"generateName": f"{owner['metadata']['name']}-", "namespace": owner["metadata"]["namespace"],
                     "labels": dict(tmeta.get("labels") or {}), "annotations": dict(tmeta.get("annotations") or {}),
                     "ownerReferences": [meta.owner_reference(owner)]},
        "spec": dict(template.get("spec") or {}),
    }


class Expectations:
    """Pod names created or deleted but not yet seen as such by the informer."""

    def __init__(self) -> None:
        self.adds: dict[str, dict[str, float]] = {}
        self.deletes: dict[str, dict[str, float]] = {}

    def prune(self, key: str, seen: set[str]) -> None:
        now = time.monotonic()
        adds = self.adds.get(key, {})
        for name in [n for n, t in adds.items() if n in seen or now - t > EXPECTATION_TTL]:
            del adds[name]
        deletes = self.deletes.get(key, {})
        for name in [n for n, t in deletes.items() if n not in seen or now - t > EXPECTATION_TTL]:
            del deletes[name]


class ReplicaSetController(Controller):
    """Also runs ReplicationControllers (`rt=REPLICATIONCONTROLLERS`): same logic, equality selectors."""

    name = "replicaset"
    workers = 2

    def __init__(self, client: Client, shared: dict[str, Informer],
                 rt: ResourceType = resources.REPLICASETS) -> None:
        super().__init__()
        self.client = client
        self.rt = rt
        self.name = rt.plural
        self.owners = shared.setdefault(rt.plural, Informer(client, rt))
        pods = self.pods = shared.setdefault("pods", Informer(client, resources.PODS))
        self.informers = [self.owners, pods]
        self.expectations = Expectations()
        self.events = EventRecorder(client, "replicaset-controller" if rt is resources.REPLICASETS
                                    else "replication-controller")
        self.owners.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n))
        pods.add_handler(on_add=self._pod_event, on_update=self._pod_updated, on_delete=self._pod_event)

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(meta.key_of(obj))

    def _pod_event(self, pod: Obj) -> None:
        ref = meta.controller_of(pod)
        if ref and ref.get("kind") == self.rt.kind:
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")
        elif ref is None:
            for owner in self.owners.list(pod["metadata"].get("namespace")):
                if self._selector(owner).matches(pod["metadata"].get("labels")):
                    self._enqueue(owner)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_event(new)
        if meta.controller_of(old) != meta.controller_of(new):
            self._pod_event(old)

    def _selector(self, owner: Obj) -> LabelSelector:
        selector = (owner.get("spec") or {}).get("selector")
        if self.rt is resources.REPLICATIONCONTROLLERS:
            return stored.selector({"matchLabels": selector or {}})
        return stored.selector(selector)

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        owner = self.owners.get(namespace, name)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return None
        if stored.refuse(owner, owner.get("spec"), {"replicas": stored.INT32}):
            return None
        uid = owner["metadata"]["uid"]
        selector = self._selector(owner)
        if selector.nothing:
            return None  # no selector, or one that does not parse: upstream skips such an owner
        owned: list[Obj] = []
        for pod in self.pods.list(namespace):
            ref = meta.controller_of(pod)
            matches = selector.matches(pod["metadata"].get("labels"))
            if ref is not None and ref.get("uid") == uid:
                if matches:
                    owned.append(pod)
                else:
                    await self._release(pod, uid)
            elif ref is None and matches and is_active(pod):
                await self._adopt(owner, pod)
                owned.append(pod)
        active = [p for p in owned if is_active(p)]
        seen = {p["metadata"]["name"] for p in active}
        self.expectations.prune(key, seen)
        pending_adds = len(self.expectations.adds.get(key, {}))
        pending_deletes = self.expectations.deletes.get(key, {})
        counted = [p for p in active if p["metadata"]["name"] not in pending_deletes]
        want = int((owner.get("spec") or {}).get("replicas", 1))
        diff = want - len(counted) - pending_adds
        if diff > 0:
            await self._create(owner, key, min(diff, BURST))
        elif diff < 0 and not pending_adds:
            victims = sorted(counted, key=deletion_rank)[: min(-diff, BURST)]
            await self._delete(owner, key, victims)
        await self._update_status(owner, active)
        return None

    async def _adopt(self, owner: Obj, pod: Obj) -> None:
        refs = [*pod["metadata"].get("ownerReferences", []), meta.owner_reference(owner)]
        patch = {"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}}
        await self.client.patch(resources.PODS, pod["metadata"]["name"], patch, pod["metadata"]["namespace"])

    async def _release(self, pod: Obj, uid: str) -> None:
        refs = [r for r in pod["metadata"].get("ownerReferences", []) if r.get("uid") != uid]
        patch = {"metadata": {"ownerReferences": refs or None,
                              "resourceVersion": pod["metadata"]["resourceVersion"]}}
        try:
            await self.client.patch(resources.PODS, pod["metadata"]["name"], patch, pod["metadata"]["namespace"])
        except StatusError as exc:
            if exc.code != 404:
                raise

    async def _create(self, owner: Obj, key: str, count: int) -> None:
        template = (owner.get("spec") or {}).get("template") or {}
        adds = self.expectations.adds.setdefault(key, {})
        for _ in range(count):
            created = await self.client.create(resources.PODS, pod_from_template(owner, template))
            adds[created["metadata"]["name"]] = time.monotonic()
            await self.events.emit(owner, "Normal", "SuccessfulCreate",
                                   f"Created pod: {created['metadata']['name']}")

    async def _delete(self, owner: Obj, key: str, victims: list[Obj]) -> None:
        deletes = self.expectations.deletes.setdefault(key, {})
        for pod in victims:
            name = pod["metadata"]["name"]
            deletes[name] = time.monotonic()
            try:
                await self.client.delete(resources.PODS, name, pod["metadata"]["namespace"])
            except StatusError as exc:
                if exc.code != 404:
                    deletes.pop(name, None)
                    raise
            await self.events.emit(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def _update_status(self, owner: Obj, active: list[Obj]) -> None:
        labels = ((owner.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        ready = sum(1 for p in active if meta.is_pod_ready(p))
        status = {
            **(owner.get("status") or {}),
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if labels.items() <= (p["metadata"].get("labels") or {})
                                        .items()),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": owner["metadata"].get("generation", 1),
        }
        if status != owner.get("status"):
            body = {**owner, "status": status}
            await self.client.update(self.rt, body, subresource="status")
