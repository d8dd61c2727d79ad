"""Node lifecycle: notice silent nodes, taint them, and evict their pods.

A node's agent renews its Lease in `kube-node-lease` every 10 s. When neither
the Lease nor the Ready condition's heartbeat has moved for the grace period,
the node's conditions become Unknown ("Kubelet stopped posting node status."),
it gets the `node.kubernetes.io/unreachable` NoSchedule and NoExecute taints,
and its pods are marked not Ready (so Services stop sending them traffic). A
node that reports Ready=False gets the `not-ready` taints instead. Pods that do
not tolerate a NoExecute taint are deleted once their toleration runs out
(300 s by default, upstream's DefaultTolerationSeconds), so their owners
recreate them elsewhere. The taints go when the node is healthy again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller

Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
MONITOR_PERIOD = 5.0


def _age(timestamp: str | None, now: dt.datetime) -> float:
    if not timestamp:
        return float("inf")
    return (now - meta.parse_time(timestamp)).total_seconds()


def toleration_seconds(pod: Obj, taint: Obj, default: float) -> float | None:
    """How long the pod may stay with this NoExecute taint (None: forever)."""
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        effect_ok = not tol.get("effect") or tol["effect"] == taint["effect"]
        key_ok = (tol.get("operator") == "Exists" and (not tol.get("key") or tol["key"] == taint["key"])) or \
            (tol.get("key") == taint["key"] and tol.get("value", "") == taint.get("value", ""))
        if effect_ok and key_ok:
            seconds = tol.get("tolerationSeconds")
            return None if seconds is None else float(seconds)
    return default


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, client: Client, shared: dict[str, Informer], *, grace_period: float = 40.0,
                 default_toleration_seconds: float = 300.0) -> None:
        super().__init__()
        self.client = client
        self.grace_period = grace_period
        self.default_toleration = default_toleration_seconds
        self.nodes = shared.setdefault("nodes", Informer(client, resources.NODES))
        self.leases = Informer(client, resources.LEASES, "kube-node-lease")
        self.pods = shared.setdefault("pods", Informer(client, resources.PODS))
        self.informers = [self.nodes, self.leases, self.pods]
        # When this controller first saw each node: a node is given the whole grace period
        # from then, even if it has never sent a heartbeat (as upstream's probe timestamps).
        self._first_seen: dict[str, dt.datetime] = {}
        self.nodes.add_handler(on_add=lambda n: self.queue.add(n["metadata"]["name"]),
                               on_update=lambda _o, n: self.queue.add(n["metadata"]["name"]))

    def _last_heartbeat(self, node: Obj, now: dt.datetime) -> float:
        lease = self.leases.get("kube-node-lease", node["metadata"]["name"])
        lease_age = _age(((lease or {}).get("spec") or {}).get("renewTime"), now)
        ready: Obj = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        first_seen = self._first_seen.setdefault(node["metadata"]["name"], now)
        return min(lease_age, _age(ready.get("lastHeartbeatTime"), now), (now - first_seen).total_seconds())

    async def sync(self, key: str) -> float | None:
        node = self.nodes.get(None, key)
        if node is None:
            self._first_seen.pop(key, None)
            return None
        now = dt.datetime.now(dt.UTC)
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        silent = self._last_heartbeat(node, now) > self.grace_period
        if silent and ready is not None and ready.get("status") != "Unknown":
            await self._mark_unknown(node, now)
            return MONITOR_PERIOD
        status = "Unknown" if silent else (ready or {}).get("status", "Unknown")
        wanted_key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(status)
        taints = await self._set_taints(node, wanted_key, now)
        if status == "Unknown":
            await self._mark_pods_not_ready(key)
        await self._evict(key, [t for t in taints if t["effect"] == "NoExecute"], now)
        return MONITOR_PERIOD

    async def _mark_unknown(self, node: Obj, now: dt.datetime) -> None:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = []
        for cond in (node.get("status") or {}).get("conditions") or []:
            cond = dict(cond)
            if cond.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
                cond.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                             "message": "Kubelet stopped posting node status.", "lastTransitionTime": stamp})
            conditions.append(cond)
        await self.client.patch(resources.NODES, node["metadata"]["name"], {"status": {"conditions": conditions}},
                                subresource="status")

    async def _set_taints(self, node: Obj, wanted_key: str | None, now: dt.datetime) -> list[Obj]:
        current = list((node.get("spec") or {}).get("taints") or [])
        ours = {UNREACHABLE, NOT_READY}
        kept = [t for t in current if t.get("key") not in ours or t.get("key") == wanted_key]
        if wanted_key:
            for effect in ("NoSchedule", "NoExecute"):
                if not any(t.get("key") == wanted_key and t.get("effect") == effect for t in kept):
                    taint: Obj = {"key": wanted_key, "effect": effect}
                    if effect == "NoExecute":
                        taint["timeAdded"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
                    kept.append(taint)
        if kept != current:
            patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                     "spec": {"taints": kept or None}}
            await self.client.patch(resources.NODES, node["metadata"]["name"], patch)
        return [t for t in kept if t.get("key") in ours]

    def _pods_on(self, node_name: str) -> list[Obj]:
        return [p for p in self.pods.list() if (p.get("spec") or {}).get("nodeName") == node_name
                and not p["metadata"].get("deletionTimestamp")]

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in self._pods_on(node_name):
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                continue
            updated = [{**c, "status": "False", "lastTransitionTime": meta.now_rfc3339()}
                       if c.get("type") in ("Ready", "ContainersReady") else c for c in conditions]
            try:
                await self.client.patch(resources.PODS, pod["metadata"]["name"], {"status": {"conditions": updated}},
                                        pod["metadata"]["namespace"], subresource="status")
            except StatusError as exc:
                if exc.code != 404:
                    raise

    async def _evict(self, node_name: str, taints: list[Obj], now: dt.datetime) -> None:
        for taint in taints:
            since = _age(taint.get("timeAdded"), now)
            for pod in self._pods_on(node_name):
                allowed = toleration_seconds(pod, taint, self.default_toleration)
                if allowed is not None and since >= allowed:
                    try:
                        await self.client.delete(resources.PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
                    except StatusError as exc:
                        if exc.code != 404:
                            raise
