"""Deployment controller: one ReplicaSet per pod template, rolled out by strategy.

The ReplicaSet of the current template is named `<deployment>-<pod-template-hash>`
and carries the `pod-template-hash` label in its selector and template, so the
ReplicaSets of one Deployment never fight over pods. RollingUpdate moves
replicas from the old ReplicaSets to the new one within maxSurge and
maxUnavailable; Recreate scales the old ones to zero first. Revisions are the
`deployment.kubernetes.io/revision` annotations that `kubectl rollout history`
and `undo` read.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers import stored
from controlplane.controllers.base import Controller, delete_if_present

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
REVISION_HISTORY_MAX_CHARS = 2000  # upstream's limit on that annotation's length
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A stable short hash of a pod template (FNV-1a over its canonical JSON, safe-encoded)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHANUMS[ord(ch) % len(_ALPHANUMS)] for ch in str(value))


def appended_revision_history(history: str, revision: int) -> str:
    """`history` (comma-separated revisions) with `revision` appended, the oldest dropped to stay within
    REVISION_HISTORY_MAX_CHARS (upstream's SetNewReplicaSetAnnotations)."""
    old = [r for r in history.split(",") if r]
    entry = str(revision)
    total = len(",".join([*old, entry]))
    while total > REVISION_HISTORY_MAX_CHARS and old:
        total -= len(old.pop(0)) + 1
    return ",".join([*old, entry]) if total <= REVISION_HISTORY_MAX_CHARS else history


def resolve(value: Any, total: int, round_up: bool) -> int:
    """An int-or-percent (maxSurge, maxUnavailable) against a replica count."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value or 0)


def surge_and_unavailable(deploy: Obj) -> tuple[int, int]:
    spec = deploy.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    rolling = ((spec.get("strategy") or {}).get("rollingUpdate") or {})
    surge = resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # upstream: both zero would deadlock the rollout
    return surge, unavailable


def _template_without_hash(rs: Obj) -> Obj:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return template


def _replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _available(rs: Obj) -> int:
    return int((rs.get("status") or {}).get("availableReplicas", 0))


class DeploymentController(Controller):
    name = "deployment"
    workers = 2

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.deployments = shared.setdefault("deployments", Informer(client, resources.DEPLOYMENTS))
        replicasets = self.replicasets = shared.setdefault("replicasets", Informer(client, resources.REPLICASETS))
        self.informers = [self.deployments, replicasets]
        self.events = EventRecorder(client, "deployment-controller")
        self.deployments.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n))
        replicasets.add_handler(on_add=self._rs_event, on_update=lambda _o, n: self._rs_event(n),
                                on_delete=self._rs_event)

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(meta.key_of(obj))

    def _rs_event(self, rs: Obj) -> None:
        self.enqueue_owner(rs, "Deployment")

    def _owned(self, deploy: Obj) -> list[Obj]:
        uid = deploy["metadata"]["uid"]
        return [rs for rs in self.replicasets.list(deploy["metadata"]["namespace"])
                if (meta.controller_of(rs) or {}).get("uid") == uid]

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        deploy = self.deployments.get(namespace, name)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return None
        spec = deploy.get("spec") or {}
        if stored.refuse(deploy, spec, {"replicas": stored.INT32, "revisionHistoryLimit": stored.INT32,
                                        "minReadySeconds": stored.INT32, "progressDeadlineSeconds": stored.INT32}):
            return None
        owned = self._owned(deploy)
        template = spec.get("template") or {}
        new_rs = next((rs for rs in owned if _template_without_hash(rs) == template), None)
        old = [rs for rs in owned if rs is not new_rs]
        if spec.get("paused"):
            await self._update_status(deploy, new_rs, old)
            return None
        if new_rs is None:
            new_rs = await self._create_new_rs(deploy, old)
        else:
            await self._bump_revision(deploy, new_rs, old)
        replicas = int(spec.get("replicas", 1))
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(deploy, new_rs, old, replicas)
        else:
            await self._rolling(deploy, new_rs, old, replicas)
        await self._cleanup(deploy, old)
        await self._update_status(deploy, new_rs, old)
        return None

    # -- ReplicaSets ---------------------------------------------------------------------

    @staticmethod
    def _max_revision(old: list[Obj]) -> int:
        return max([int((rs["metadata"].get("annotations") or {}).get(REVISION, 0)) for rs in old] or [0])

    async def _create_new_rs(self, deploy: Obj, old: list[Obj]) -> Obj:
        spec = deploy["spec"]
        collision = int((deploy.get("status") or {}).get("collisionCount", 0))
        template = copy.deepcopy(spec.get("template") or {})
        hash_value = template_hash(template, collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_value
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_value
        surge, _ = surge_and_unavailable(deploy)
        replicas = int(spec.get("replicas", 1))
        annotations = {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items()
                       if not k.startswith("kubectl.kubernetes.io/last-applied")}
        annotations.update({REVISION: str(self._max_revision(old) + 1), DESIRED: str(replicas),
                            MAX_REPLICAS: str(replicas + surge)})
        rs = {
            "metadata": {"name": f"{deploy['metadata']['name']}-{hash_value}", "namespace": deploy["metadata"]
                         ["namespace"], "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                         "ownerReferences": [meta.owner_reference(deploy)]},
            "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": selector,
                     "template": template},
        }
        try:
            created = await self.client.create(resources.REPLICASETS, rs)
        except StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
            # A ReplicaSet of that name with another template: a hash collision. Count it
            # and retry with the next hash, as upstream does.
            status = {**(deploy.get("status") or {}), "collisionCount": collision + 1}
            await self.client.update(resources.DEPLOYMENTS, {**deploy, "status": status}, subresource="status")
            raise
        await self.events.emit(deploy, "Normal", "ScalingReplicaSet",
                               f"Scaled up replica set {created['metadata']['name']} to 0")
        return created

    async def _bump_revision(self, deploy: Obj, new_rs: Obj, old: list[Obj]) -> None:
        """A template rolled back to an older ReplicaSet makes that one the newest revision; the
        revisions it had before are kept in its revision-history annotation, as upstream does."""
        annotations = new_rs["metadata"].get("annotations") or {}
        current = int(annotations.get(REVISION, 0))
        top = self._max_revision(old)
        if current <= top:
            bumped = {REVISION: str(top + 1)}
            if current:
                bumped[REVISION_HISTORY] = appended_revision_history(annotations.get(REVISION_HISTORY, ""), current)
            await self._patch_rs(new_rs, {"metadata": {"annotations": bumped}})

    async def _patch_rs(self, rs: Obj, patch: Obj) -> Obj:
        return await self.client.patch(resources.REPLICASETS, rs["metadata"]["name"], patch,
                                       rs["metadata"]["namespace"])

    async def _scale(self, deploy: Obj, rs: Obj, replicas: int) -> Obj:
        if _replicas(rs) == replicas:
            return rs
        direction = "up" if replicas > _replicas(rs) else "down"
        surge, _ = surge_and_unavailable(deploy)
        desired = int(deploy["spec"].get("replicas", 1))
        patch = {"metadata": {"annotations": {DESIRED: str(desired), MAX_REPLICAS: str(desired + surge)}},
                 "spec": {"replicas": replicas}}
        updated = await self._patch_rs(rs, patch)
        await self.events.emit(deploy, "Normal", "ScalingReplicaSet",
                               f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas}")
        return updated

    async def _recreate(self, deploy: Obj, new_rs: Obj, old: list[Obj], replicas: int) -> None:
        for rs in old:
            await self._scale(deploy, rs, 0)
        if all(int((rs.get("status") or {}).get("replicas", 0)) == 0 for rs in old):
            await self._scale(deploy, new_rs, replicas)

    async def _rolling(self, deploy: Obj, new_rs: Obj, old: list[Obj], replicas: int) -> None:
        surge, unavailable = surge_and_unavailable(deploy)
        if not any(_replicas(rs) for rs in old):
            await self._scale(deploy, new_rs, replicas)  # nothing left to roll from
            return
        if _replicas(new_rs) > replicas:
            new_rs = await self._scale(deploy, new_rs, replicas)  # scaled down mid-rollout
        # Scale up the new ReplicaSet within maxSurge.
        total = _replicas(new_rs) + sum(_replicas(rs) for rs in old)
        room = replicas + surge - total
        if room > 0 and _replicas(new_rs) < replicas:
            new_rs = await self._scale(deploy, new_rs, min(replicas, _replicas(new_rs) + room))
        # Scale down old ReplicaSets within maxUnavailable: unhealthy replicas first.
        min_available = replicas - unavailable
        available = _available(new_rs) + sum(_available(rs) for rs in old)
        budget = available - min_available
        for rs in sorted(old, key=lambda r: r["metadata"].get("creationTimestamp") or ""):
            if _replicas(rs) == 0:
                continue
            unhealthy = max(_replicas(rs) - _available(rs), 0)
            remove = unhealthy + max(min(budget, _available(rs)), 0)
            remove = min(remove, _replicas(rs))
            if remove > 0:
                budget -= max(remove - unhealthy, 0)
                await self._scale(deploy, rs, _replicas(rs) - remove)

    async def _cleanup(self, deploy: Obj, old: list[Obj]) -> None:
        limit = int((deploy.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [rs for rs in old if _replicas(rs) == 0 and int((rs.get("status") or {}).get("replicas", 0)) == 0]
        idle.sort(key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, 0)))
        for rs in idle[: max(len(idle) - limit, 0)]:
            await delete_if_present(self.client, resources.REPLICASETS, rs)

    # -- status ----------------------------------------------------------------------

    async def _update_status(self, deploy: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        spec = deploy.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        every = [*old, *([new_rs] if new_rs else [])]

        def total(field: str) -> int:
            return sum(int((rs.get("status") or {}).get(field, 0)) for rs in every)

        available = total("availableReplicas")
        updated = int((new_rs.get("status") or {}).get("replicas", 0)) if new_rs else 0
        _, unavailable = surge_and_unavailable(deploy)
        previous = {c["type"]: c for c in (deploy.get("status") or {}).get("conditions") or []}
        now = meta.now_rfc3339()

        def condition(kind: str, status: str, reason: str, message: str) -> Obj:
            old_cond = previous.get(kind) or {}
            changed = old_cond.get("status") != status
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastUpdateTime": now if changed or old_cond.get("reason") != reason else
                    old_cond.get("lastUpdateTime", now),
                    "lastTransitionTime": now if changed else old_cond.get("lastTransitionTime", now)}

        ok = available >= replicas - unavailable
        complete = new_rs is not None and updated == replicas and total("replicas") == replicas and \
            available == replicas
        rs_name = new_rs["metadata"]["name"] if new_rs else ""
        conditions = [
            condition("Available", "True" if ok else "False",
                      "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                      "Deployment has minimum availability." if ok else
                      "Deployment does not have minimum availability."),
            condition("Progressing", "True", "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                      f'ReplicaSet "{rs_name}" has successfully progressed.' if complete else
                      f'ReplicaSet "{rs_name}" is progressing.'),
        ]
        for cond in conditions:  # keep timestamps when nothing but time changed
            old_cond = previous.get(cond["type"])
            if old_cond and all(old_cond.get(k) == cond[k] for k in ("status", "reason", "message")):
                cond.update({k: old_cond[k] for k in ("lastUpdateTime", "lastTransitionTime") if k in old_cond})
        status: Obj = {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": total("replicas"), "updatedReplicas": updated, "readyReplicas": total("readyReplicas"),
            "availableReplicas": available, "unavailableReplicas": max(total("replicas") - available, 0),
            "conditions": conditions,
        }
        if (deploy.get("status") or {}).get("collisionCount"):
            status["collisionCount"] = deploy["status"]["collisionCount"]
        if status != deploy.get("status"):
            await self.client.update(resources.DEPLOYMENTS, {**deploy, "status": status}, subresource="status")
        revision = (new_rs["metadata"].get("annotations") or {}).get(REVISION) if new_rs else None
        if revision and (deploy["metadata"].get("annotations") or {}).get(REVISION) != revision:
            await self.client.patch(resources.DEPLOYMENTS, deploy["metadata"]["name"],
                                    {"metadata": {"annotations": {REVISION: revision}}},
                                    deploy["metadata"]["namespace"])

