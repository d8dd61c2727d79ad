"""DaemonSet controller: one pod per eligible node, replaced node by node on update.

Each pod is pinned to its node with a required node affinity on
`metadata.name` (as upstream does) and then bound by the scheduler like any
pod, so taints, resources and host ports are checked in one place. A node is
eligible when the template's nodeSelector/affinity match it and its NoSchedule
taints are tolerated (with the DaemonSet's default tolerations for the
not-ready, unreachable and unschedulable taints). A RollingUpdate replaces at
most `maxUnavailable` out-of-date pods at a time.

Every template gets a ControllerRevision (see `history`): pods carry its hash
as `controller-revision-hash` (and the DaemonSet's template generation as
`pod-template-generation`), and a pod is up to date when its hash label is the
current revision's, which is what `kubectl rollout history/undo daemonset` and
`status.updatedNumberScheduled` rest on.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from controlplane.api import meta, resources
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers.base import Controller, delete_if_present
from controlplane.controllers.deployment import resolve
from controlplane.controllers.history import HASH_LABEL, RevisionHistory, hash_of
from controlplane.controllers.replicaset import Expectations, is_active
from controlplane.scheduler.plugins import NodeInfo, node_affinity, untolerated_taint

Obj = dict[str, Any]
GENERATION_LABEL = "pod-template-generation"
GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
]


def daemon_pod_spec(template: Obj, node: str) -> Obj:
    spec = copy.deepcopy(template.get("spec") or {})
    tolerations = spec.setdefault("tolerations", [])
    for tol in DEFAULT_TOLERATIONS:
        if tol not in tolerations:
            tolerations.append(dict(tol))
    spec.setdefault("affinity", {})["nodeAffinity"] = {
        **(spec.get("affinity") or {}).get("nodeAffinity", {}),
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]}]},
    }
    return spec


def template_generation(ds: Obj) -> str:
    """The template generation upstream's API server keeps in an annotation; else the set's generation."""
    md = ds["metadata"]
    return str((md.get("annotations") or {}).get(GENERATION_ANNOTATION) or md.get("generation") or 1)


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.daemonsets = shared.setdefault("daemonsets", Informer(client, resources.DAEMONSETS))
        self.nodes = shared.setdefault("nodes", Informer(client, resources.NODES))
        self.pods = shared.setdefault("pods", Informer(client, resources.PODS))
        self.history = RevisionHistory(client, shared, "DaemonSet", lambda r: self.enqueue_owner(r, "DaemonSet"))
        self.informers = [self.daemonsets, self.nodes, self.pods, self.history.informer]
        self.expectations = Expectations()
        self._created_for: dict[str, str] = {}  # pod created but not yet seen -> its node
        self.events = EventRecorder(client, "daemonset-controller")
        self.daemonsets.add_handler(on_add=self._enqueue, on_update=lambda _o, d: self._enqueue(d))
        self.nodes.add_handler(on_add=self._all, on_update=lambda _o, _n: self._all(), on_delete=self._all)
        self.pods.add_handler(on_add=self._pod, on_update=lambda _o, p: self._pod(p), on_delete=self._pod)

    def _enqueue(self, ds: Obj) -> None:
        self.queue.add(meta.key_of(ds))

    def _all(self, *_: Obj) -> None:
        for ds in self.daemonsets.list():
            self._enqueue(ds)

    def _pod(self, pod: Obj) -> None:
        self.enqueue_owner(pod, "DaemonSet")

    def _eligible(self, ds: Obj, template: Obj, node: Obj) -> bool:
        # A would-be pod of this set on that node, as the scheduler's plugins read pods.
        probe = {"metadata": {"name": ds["metadata"]["name"], "namespace": ds["metadata"]["namespace"],
                              "labels": dict((template.get("metadata") or {}).get("labels") or {})},
                 "spec": daemon_pod_spec(template, node["metadata"]["name"])}
        info = NodeInfo(node)
        return node_affinity(probe, info) is None and untolerated_taint(probe, info, ("NoSchedule",)) is None

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        ds = self.daemonsets.get(namespace, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return None
        template = (ds.get("spec") or {}).get("template") or {}
        history = await self.history.sync(ds)
        revision = hash_of(history.update) or history.update["metadata"]["name"]
        uid = ds["metadata"]["uid"]
        owned = [p for p in self.pods.list(namespace) if (meta.controller_of(p) or {}).get("uid") == uid]
        pods = [p for p in owned if is_active(p)]
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            by_node.setdefault(self._node_of(pod), []).append(pod)
        self.expectations.prune(key, {p["metadata"]["name"] for p in pods})
        in_flight = self.expectations.adds.get(key, {})
        for pod_name in [n for n in self._created_for if n not in in_flight]:
            del self._created_for[pod_name]
        pending_nodes = {self._created_for[n] for n in in_flight if n in self._created_for}
        eligible = [n for n in self.nodes.list() if self._eligible(ds, template, n)]
        eligible_names = {n["metadata"]["name"] for n in eligible}
        for node_name in sorted(eligible_names):
            if not by_node.get(node_name) and node_name not in pending_nodes:
                await self._create(ds, key, template, node_name, revision)
        for node_name, node_pods in by_node.items():
            extra = node_pods if node_name not in eligible_names else node_pods[1:]
            for pod in extra:
                await self._delete(pod)
        await self._rolling_update(ds, by_node, eligible_names, revision)
        live_hashes = {(p["metadata"].get("labels") or {}).get(HASH_LABEL) for p in owned}
        await self.history.trim(ds, history.all, lambda r: r is history.update or hash_of(r) in live_hashes)
        await self._update_status(ds, by_node, eligible_names, revision, history.collision_count)
        return None

    @staticmethod
    def _node_of(pod: Obj) -> str:
        if (pod.get("spec") or {}).get("nodeName"):
            return str(pod["spec"]["nodeName"])
        terms = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
        for term in terms:
            for field in term.get("matchFields") or []:
                if field.get("key") == "metadata.name" and field.get("values"):
                    return str(field["values"][0])
        return ""

    async def _create(self, ds: Obj, key: str, template: Obj, node: str, revision: str) -> None:
        md = ds["metadata"]
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: revision,
                  GENERATION_LABEL: template_generation(ds)}
        pod = {"metadata": {"generateName": f"{md['name']}-", "namespace": md["namespace"], "labels": labels,
                            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                            "ownerReferences": [meta.owner_reference(ds)]},
               "spec": daemon_pod_spec(template, node)}
        created = await self.client.create(resources.PODS, pod)
        self.expectations.adds.setdefault(key, {})[created["metadata"]["name"]] = time.monotonic()
        self._created_for[created["metadata"]["name"]] = node
        await self.events.emit(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete(self, pod: Obj) -> None:
        await delete_if_present(self.client, resources.PODS, pod)

    async def _rolling_update(self, ds: Obj, by_node: dict[str, list[Obj]], eligible: set[str],
                              revision: str) -> None:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return  # OnDelete: pods are replaced only when a user deletes them
        max_unavailable = resolve((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(eligible),
                                  round_up=True) or 1
        unavailable = sum(1 for n in eligible if not any(meta.is_pod_ready(p) for p in by_node.get(n, [])))
        for node in sorted(eligible):
            if unavailable >= max_unavailable:
                return
            for pod in by_node.get(node, []):
                if (pod["metadata"].get("labels") or {}).get(HASH_LABEL) != revision:
                    await self._delete(pod)
                    unavailable += 1

    async def _update_status(self, ds: Obj, by_node: dict[str, list[Obj]], eligible: set[str],
                             revision: str, collision_count: int) -> None:
        previous = ds.get("status") or {}
        scheduled = [n for n in by_node if n in eligible]
        status = {
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": len([n for n in by_node if n not in eligible]),
            "numberReady": sum(1 for n in scheduled if any(meta.is_pod_ready(p) for p in by_node[n])),
            "updatedNumberScheduled": sum(1 for n in scheduled if any(
                (p["metadata"].get("labels") or {}).get(HASH_LABEL) == revision for p in by_node[n])),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        status["numberAvailable"] = status["numberReady"]
        status["numberUnavailable"] = max(len(eligible) - status["numberReady"], 0)
        if collision_count or "collisionCount" in previous:
            status["collisionCount"] = collision_count
        if previous.get("conditions"):
            status["conditions"] = previous["conditions"]
        if status != previous:
            await self.client.update(resources.DAEMONSETS, {**ds, "status": status}, subresource="status")
