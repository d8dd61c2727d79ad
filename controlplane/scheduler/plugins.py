"""Scheduling plugins: small filters and scorers over one node's view of the cluster.

A filter answers "can this pod go on this node?" with None or the upstream
reason string that ends up, counted per node, in the pod's Unschedulable
condition ("0/3 nodes are available: 2 Insufficient cpu, ..."). A scorer ranks
the nodes that passed every filter from 0 to 100.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.api.quantity import milli, whole
from controlplane.api.selectors import LabelSelector, Requirement

Obj = dict[str, Any]
MAX_SCORE = 100
DEFAULT_MILLI_CPU_REQUEST = 100  # upstream's non-zero defaults for scoring only
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


def pod_requests(pod: Obj) -> dict[str, int]:
    """Effective requests: max(sum of containers, largest init container), per resource."""
    spec = pod.get("spec") or {}

    def of(c: Obj) -> dict[str, int]:
        req = (c.get("resources") or {}).get("requests") or {}
        return {"cpu": milli(req.get("cpu", 0)), "memory": whole(req.get("memory", 0)),
                "ephemeral-storage": whole(req.get("ephemeral-storage", 0))}

    total = {"cpu": 0, "memory": 0, "ephemeral-storage": 0}
    for c in spec.get("containers") or []:
        for k, v in of(c).items():
            total[k] += v
    for c in spec.get("initContainers") or []:
        for k, v in of(c).items():
            total[k] = max(total[k], v)
    return total


@dataclass
class NodeInfo:
    node: Obj
    pods: list[Obj] = field(default_factory=list)
    # The whole cluster (this node included), for plugins that reason about topology
    # domains: inter-pod affinity and topology spread.
    view: ClusterView | None = field(default=None, repr=False)

    def peers(self) -> list[NodeInfo]:
        return self.view.infos if self.view is not None else [self]

    @property
    def name(self) -> str:
        return str(self.node["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.node["metadata"].get("labels") or {})

    # Each value is computed once per scheduling cycle: filters and scores ask repeatedly.
    @functools.cached_property
    def _allocatable(self) -> dict[str, int]:
        alloc = (self.node.get("status") or {}).get("allocatable") or {}
        return {"cpu": milli(alloc.get("cpu", 0)), "memory": whole(alloc.get("memory", 0)),
                "ephemeral-storage": whole(alloc.get("ephemeral-storage", 0)),
                "pods": int(whole(alloc.get("pods", 0)))}

    def allocatable(self) -> dict[str, int]:
        return self._allocatable

    @functools.cached_property
    def _requested(self) -> dict[str, int]:
        total = {"cpu": 0, "memory": 0, "ephemeral-storage": 0}
        for pod in self.pods:
            for k, v in pod_requests(pod).items():
                total[k] += v
        return total

    def requested(self) -> dict[str, int]:
        return self._requested

    @functools.cached_property
    def _used_host_ports(self) -> set[tuple[str, str, int]]:
        return {hp for pod in self.pods for hp in host_ports(pod)}

    def used_host_ports(self) -> set[tuple[str, str, int]]:
        return self._used_host_ports


class ClusterView:
    """One scheduling cycle's view of every node; what is derived from it is computed once."""

    def __init__(self, infos: list[NodeInfo]) -> None:
        self.infos = infos
        for info in infos:
            info.view = self

    @functools.cached_property
    def anti_affinity(self) -> list[tuple[NodeInfo, Obj, Obj]]:
        """(node, pod, term) for every placed pod with a required anti-affinity term."""
        return [(info, existing, term) for info in self.infos for existing in info.pods
                for term in _required(existing, "podAntiAffinity")]


def host_ports(pod: Obj) -> set[tuple[str, str, int]]:
    ports = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                ports.add((p.get("hostIP") or "0.0.0.0", p.get("protocol", "TCP"), int(p["hostPort"])))
    return ports


# ------------------------------------------------------------------------------- filters

def node_unschedulable(pod: Obj, info: NodeInfo) -> str | None:
    if not (info.node.get("spec") or {}).get("unschedulable"):
        return None
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("key") == "node.kubernetes.io/unschedulable" and t.get("effect") in (None, "", "NoSchedule"):
            return None
    return "node(s) were unschedulable"


def node_name(pod: Obj, info: NodeInfo) -> str | None:
    wanted = (pod.get("spec") or {}).get("nodeName")
    return None if not wanted or wanted == info.name else "node(s) didn't match the requested node name"


def _term_matches(term: Obj, info: NodeInfo) -> bool:
    requirements = []
    for expr in term.get("matchExpressions") or []:
        op = expr.get("operator")
        values = tuple(str(v) for v in expr.get("values") or ())
        if op in ("Gt", "Lt"):
            value = info.labels.get(expr["key"])
            try:
                if value is None or not (int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])):
                    return False
            except (ValueError, IndexError):
                return False
            continue
        requirements.append(Requirement(expr["key"], op, values))
    for expr in term.get("matchFields") or []:
        if expr.get("key") == "metadata.name":
            inside = info.name in (expr.get("values") or [])
            if inside != (expr.get("operator") == "In"):
                return False
    return LabelSelector(tuple(requirements)).matches(info.labels)


def node_affinity(pod: Obj, info: NodeInfo) -> str | None:
    spec = pod.get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    if any(info.labels.get(k) != v for k, v in selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(t, info) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def resources_fit(pod: Obj, info: NodeInfo) -> list[str] | None:
    """All the resources that do not fit (upstream reports each one)."""
    alloc, used, want = info.allocatable(), info.requested(), pod_requests(pod)
    reasons = []
    if len(info.pods) + 1 > alloc["pods"]:
        reasons.append("Too many pods")
    for name in ("cpu", "memory", "ephemeral-storage"):
        if want[name] and used[name] + want[name] > alloc[name]:
            reasons.append(f"Insufficient {name}")
    return reasons or None


def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator", "Equal")
    if op == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", "")


def untolerated_taint(pod: Obj, info: NodeInfo, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
                      ) -> Obj | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (info.node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not any(_tolerates(t, taint) for t in tolerations):
            return dict(taint)
    return None


def taint_toleration(pod: Obj, info: NodeInfo) -> str | None:
    taint = untolerated_taint(pod, info)
    if taint is None:
        return None
    return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"


def node_ready(pod: Obj, info: NodeInfo) -> str | None:
    """A node whose Ready condition is not True, as the not-ready/unreachable taints would say."""
    for cond in (info.node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return None
            key = "node.kubernetes.io/unreachable" if cond.get("status") == "Unknown" else \
                "node.kubernetes.io/not-ready"
            fake = {"key": key, "effect": "NoSchedule"}
            tolerated = any(_tolerates(t, fake) for t in (pod.get("spec") or {}).get("tolerations") or [])
            return None if tolerated else f"node(s) had untolerated taint {{{key}: }}"
    return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"


def node_ports(pod: Obj, info: NodeInfo) -> str | None:
    wanted = host_ports(pod)
    if not wanted:
        return None
    used = info.used_host_ports()
    for ip, proto, port in wanted:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return "node(s) didn't have free ports for the requested pod ports"
    return None


def _term_selector(term: Obj) -> LabelSelector:
    from controlplane.api.selectors import selector_from_spec

    return selector_from_spec(term.get("labelSelector") or {})


def _term_namespaces(term: Obj, pod: Obj) -> set[str]:
    return set(term.get("namespaces") or [pod["metadata"].get("namespace", "default")])


def _matching_in_domain(term: Obj, owner: Obj, info: NodeInfo) -> bool:
    """Is there a pod matching `term` (from `owner`'s view) in `info`'s topology domain?"""
    key = term.get("topologyKey", "")
    domain = info.labels.get(key)
    if domain is None:
        return False
    selector, namespaces = _term_selector(term), _term_namespaces(term, owner)
    return any(peer.labels.get(key) == domain and any(
        p["metadata"].get("namespace") in namespaces and selector.matches(p["metadata"].get("labels"))
        for p in peer.pods) for peer in info.peers())


def _required(pod: Obj, kind: str) -> list[Obj]:
    section = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    return list(section.get("requiredDuringSchedulingIgnoredDuringExecution") or [])


def inter_pod_affinity(pod: Obj, info: NodeInfo) -> str | None:
    for term in _required(pod, "podAffinity"):
        if not _matching_in_domain(term, pod, info):
            # The first pod of a group may land anywhere if it matches its own term.
            anywhere = any(_matching_in_domain(term, pod, peer) for peer in info.peers())
            itself = _term_selector(term).matches(pod["metadata"].get("labels")) and \
                pod["metadata"].get("namespace") in _term_namespaces(term, pod)
            if anywhere or not itself:
                return "node(s) didn't match pod affinity rules"
    for term in _required(pod, "podAntiAffinity"):
        if _matching_in_domain(term, pod, info):
            return "node(s) didn't match pod anti-affinity rules"
    labels = pod["metadata"].get("labels")
    guards = info.view.anti_affinity if info.view is not None else [
        (info, existing, term) for existing in info.pods for term in _required(existing, "podAntiAffinity")]
    for peer, existing, term in guards:
        key = term.get("topologyKey", "")
        if info.labels.get(key) is not None and info.labels.get(key) == peer.labels.get(key) and \
                pod["metadata"].get("namespace") in _term_namespaces(term, existing) and \
                _term_selector(term).matches(labels):
            return "node(s) didn't satisfy existing pods anti-affinity rules"
    return None


def topology_spread(pod: Obj, info: NodeInfo) -> str | None:
    for constraint in (pod.get("spec") or {}).get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        key = constraint.get("topologyKey", "")
        if key not in info.labels:
            return "node(s) didn't match pod topology spread constraints (missing required label)"
        selector = _term_selector(constraint)
        namespace = pod["metadata"].get("namespace")
        counts: dict[str, int] = {}
        for peer in info.peers():
            if key in peer.labels and node_affinity(pod, peer) is None:
                counts.setdefault(peer.labels[key], 0)
                counts[peer.labels[key]] += sum(1 for p in peer.pods if p["metadata"].get("namespace") == namespace
                                                and selector.matches(p["metadata"].get("labels")))
        minimum = min(counts.values()) if counts else 0
        if counts.get(info.labels[key], 0) + 1 - minimum > int(constraint.get("maxSkew", 1)):
            return "node(s) didn't match pod topology spread constraints"
    return None


Filter = Callable[[Obj, NodeInfo], "str | list[str] | None"]
FILTERS: tuple[tuple[str, Filter], ...] = (
    ("NodeUnschedulable", node_unschedulable), ("NodeName", node_name), ("NodeReady", node_ready),
    ("TaintToleration", taint_toleration), ("NodeAffinity", node_affinity), ("NodePorts", node_ports),
    ("NodeResourcesFit", resources_fit), ("InterPodAffinity", inter_pod_affinity),
    ("PodTopologySpread", topology_spread),
)


def filter_node(pod: Obj, info: NodeInfo) -> list[str]:
    """Reasons this node cannot take the pod (empty: it can). The first failing plugin decides."""
    for _name, check in FILTERS:
        result = check(pod, info)
        if result:
            return result if isinstance(result, list) else [result]
    return []


# ------------------------------------------------------------------------------- scores

def _fractions(pod: Obj, info: NodeInfo) -> tuple[float, float]:
    alloc, used, want = info.allocatable(), info.requested(), pod_requests(pod)
    cpu = (used["cpu"] + (want["cpu"] or DEFAULT_MILLI_CPU_REQUEST)) / max(alloc["cpu"], 1)
    mem = (used["memory"] + (want["memory"] or DEFAULT_MEMORY_REQUEST)) / max(alloc["memory"], 1)
    return min(cpu, 1.0), min(mem, 1.0)


def least_allocated(pod: Obj, info: NodeInfo) -> float:
    cpu, mem = _fractions(pod, info)
    return MAX_SCORE * ((1 - cpu) + (1 - mem)) / 2


def balanced_allocation(pod: Obj, info: NodeInfo) -> float:
    cpu, mem = _fractions(pod, info)
    return MAX_SCORE * (1 - abs(cpu - mem))


def preferred_node_affinity(pod: Obj, info: NodeInfo) -> float:
    preferred = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
                 .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    total = sum(int(p.get("weight", 0)) for p in preferred)
    if not total:
        return 0.0
    got = sum(int(p.get("weight", 0)) for p in preferred if _term_matches(p.get("preference") or {}, info))
    return MAX_SCORE * got / total


def prefer_no_schedule(pod: Obj, info: NodeInfo) -> float:
    return 0.0 if untolerated_taint(pod, info, ("PreferNoSchedule",)) else float(MAX_SCORE)


def spread_by_owner(pod: Obj, info: NodeInfo) -> float:
    """Fewer pods of the same owner on a node score higher (upstream's default spreading)."""
    owner = next((r.get("uid") for r in (pod.get("metadata") or {}).get("ownerReferences") or []
                  if r.get("controller")), None)
    if owner is None:
        return float(MAX_SCORE)
    same = sum(1 for p in info.pods for r in (p.get("metadata") or {}).get("ownerReferences") or []
               if r.get("uid") == owner)
    return MAX_SCORE / (1 + same)


SCORERS: tuple[tuple[str, Callable[[Obj, NodeInfo], float], int], ...] = (
    ("NodeResourcesLeastAllocated", least_allocated, 1),
    ("NodeResourcesBalancedAllocation", balanced_allocation, 1),
    ("NodeAffinity", preferred_node_affinity, 2),
    ("TaintToleration", prefer_no_schedule, 1),
    ("SelectorSpread", spread_by_owner, 2),
)


def score_node(pod: Obj, info: NodeInfo) -> float:
    return sum(weight * fn(pod, info) for _name, fn, weight in SCORERS)


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough (upstream's adaptive percentageOfNodesToScore)."""
    if total < 100:
        return total
    if percentage <= 0:
        percentage = max(50 - total // 125, 5)
    return max(total * percentage // 100, 100)


def unschedulable_message(total_nodes: int, reasons: dict[str, int]) -> str:
    """Upstream's FitError text, reasons sorted as strings."""
    if total_nodes == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    head = f"0/{total_nodes} nodes are available"
    if parts:
        head += ": " + ", ".join(parts)
    return (f"{head}. preemption: 0/{total_nodes} nodes are available: {total_nodes} Preemption is not "
            "helpful for scheduling.")
