"""StatefulSet controller: pods with stable names and identities, in order.

Pods are `<set>-0 … <set>-(N-1)` with `hostname` = pod name and `subdomain` =
`serviceName`. With OrderedReady, pod i is created only when every pod below
it is Running and Ready, and scale-down removes the highest ordinal first, one
at a time; Parallel drops the ordering. A RollingUpdate replaces pods from the
highest ordinal down, one at a time, keeping ordinals below `partition` on the
old revision.

Revisions are ControllerRevisions (see `history`): `status.updateRevision` names
the revision of the current template, `status.currentRevision` the one the set
is rolling from (it becomes the update revision once every pod is updated and
ready), and each pod's `controller-revision-hash` label names the revision it
was made from. Pods below the partition are (re)created from the current
revision's template, the others from the update revision's.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers import stored
from controlplane.controllers.base import Controller, delete_if_present
from controlplane.controllers.history import HASH_LABEL, RevisionHistory, Revisions, template_of

Obj = dict[str, Any]
REVISION_LABEL = HASH_LABEL
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def ordinal(set_name: str, pod_name: str) -> int | None:
    match = re.fullmatch(re.escape(set_name) + r"-(\d+)", pod_name)
    return int(match.group(1)) if match else None


def running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and meta.is_pod_ready(pod)


class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.sets = shared.setdefault("statefulsets", Informer(client, resources.STATEFULSETS))
        self.pods = shared.setdefault("pods", Informer(client, resources.PODS))
        self.history = RevisionHistory(client, shared, "StatefulSet",
                                       lambda r: self.enqueue_owner(r, "StatefulSet"))
        self.informers = [self.sets, self.pods, self.history.informer]
        self.events = EventRecorder(client, "statefulset-controller")
        self.sets.add_handler(on_add=lambda s: self.queue.add(meta.key_of(s)),
                              on_update=lambda _o, s: self.queue.add(meta.key_of(s)))
        self.pods.add_handler(on_add=self._pod, on_update=lambda _o, p: self._pod(p), on_delete=self._pod)

    def _pod(self, pod: Obj) -> None:
        self.enqueue_owner(pod, "StatefulSet")

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        sts = self.sets.get(namespace, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return None
        spec = sts.get("spec") or {}
        if stored.refuse(sts, spec, {"replicas": stored.INT32}):
            return None
        replicas = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        history = await self.history.sync(sts)
        update = history.update
        current = history.named((sts.get("status") or {}).get("currentRevision")) or update
        uid = sts["metadata"]["uid"]
        by_ordinal: dict[int, Obj] = {}
        for pod in self.pods.list(namespace):
            index = ordinal(name, pod["metadata"]["name"])
            if index is not None and (meta.controller_of(pod) or {}).get("uid") == uid:
                by_ordinal[index] = pod
        await self._reconcile(sts, by_ordinal, replicas, ordered, current, update)
        status = await self._update_status(sts, by_ordinal, replicas, history)
        live = {status["currentRevision"], status["updateRevision"]}
        live |= {(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in by_ordinal.values()}
        await self.history.trim(sts, history.all, lambda r: r["metadata"]["name"] in live)
        return None

    async def _reconcile(self, sts: Obj, pods: dict[int, Obj], replicas: int, ordered: bool, current: Obj,
                         update: Obj) -> None:
        # Create missing ordinals, lowest first; in order, stop at the first one not yet Running and Ready.
        for index in range(replicas):
            pod = pods.get(index)
            if pod is None:
                await self._create(sts, index, self._revision_for(sts, index, current, update))
                if ordered:
                    return
                continue
            if pod["metadata"].get("deletionTimestamp") or (pod.get("status") or {}).get("phase") == "Failed":
                if (pod.get("status") or {}).get("phase") == "Failed":
                    await self._delete(pod)  # recreated with the same name on a later sync
                if ordered:
                    return
                continue
            if ordered and not running_and_ready(pod):
                return
        # Scale down: highest ordinal first.
        extra = sorted((i for i in pods if i >= replicas), reverse=True)
        for index in extra:
            pod = pods[index]
            if not pod["metadata"].get("deletionTimestamp"):
                await self._delete(pod)
            if ordered:
                return
        await self._rolling_update(sts, pods, replicas, update["metadata"]["name"])

    @staticmethod
    def _revision_for(sts: Obj, index: int, current: Obj, update: Obj) -> Obj:
        """Below a RollingUpdate partition a pod keeps the current revision; every other pod gets the update one."""
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
                index < int((strategy.get("rollingUpdate") or {}).get("partition", 0)):
            return current
        return update

    async def _rolling_update(self, sts: Obj, pods: dict[int, Obj], replicas: int, revision: str) -> None:
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        if not all(running_and_ready(pods[i]) for i in range(replicas) if i in pods):
            return  # one at a time: wait for the cluster to settle
        for index in range(replicas - 1, partition - 1, -1):
            pod = pods.get(index)
            if pod is not None and (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision:
                await self._delete(pod)
                return

    async def _create(self, sts: Obj, index: int, revision: Obj) -> None:
        md, spec = sts["metadata"], sts.get("spec") or {}
        template = template_of(revision) or copy.deepcopy(spec.get("template") or {})
        pod_name = f"{md['name']}-{index}"
        labels = {**((template.get("metadata") or {}).get("labels") or {}),
                  REVISION_LABEL: revision["metadata"]["name"],
                  POD_NAME_LABEL: pod_name, "apps.kubernetes.io/pod-index": str(index)}
        pod_spec = template.get("spec") or {}
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        pod = {"metadata": {"name": pod_name, "namespace": md["namespace"], "labels": labels,
                            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                            "ownerReferences": [meta.owner_reference(sts)]}, "spec": pod_spec}
        try:
            await self.client.create(resources.PODS, pod)
        except StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
            return
        await self.events.emit(sts, "Normal", "SuccessfulCreate", f"create Pod {pod_name} in StatefulSet "
                               f"{md['name']} successful")

    async def _delete(self, pod: Obj) -> None:
        await delete_if_present(self.client, resources.PODS, pod)

    async def _update_status(self, sts: Obj, pods: dict[int, Obj], replicas: int, history: Revisions) -> Obj:
        def revision_of(pod: Obj) -> str | None:
            return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL)

        previous = sts.get("status") or {}
        update = history.update["metadata"]["name"]
        current = (history.named(previous.get("currentRevision")) or history.update)["metadata"]["name"]
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in live if running_and_ready(p))
        updated = sum(1 for p in live if revision_of(p) == update)
        current_replicas = sum(1 for p in live if revision_of(p) == current)
        if updated == ready == len(live) == replicas:
            # Every wanted pod runs the update revision and is ready: the rollout is complete.
            current, current_replicas = update, updated
        status: Obj = {
            "observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(live),
            "readyReplicas": ready, "availableReplicas": ready, "currentReplicas": current_replicas,
            "updatedReplicas": updated, "currentRevision": current, "updateRevision": update,
            "collisionCount": history.collision_count,
        }
        if previous.get("conditions"):
            status["conditions"] = previous["conditions"]
        if status != previous:
            await self.client.update(resources.STATEFULSETS, {**sts, "status": status}, subresource="status")
        return status
