"""Scheduling plugins and the framework that runs them over the cache.

A plugin is a name plus small functions, each optional:

- `pre_filter(pod, cluster)`: what its filter needs, computed once per pod
  (topology counts, say), or SKIP when the filter has nothing to check;
- `filter(state, pod, node)`: None, or the upstream reason string(s) that end
  up, counted per node, in the Unschedulable condition ("0/3 nodes are
  available: 2 Insufficient cpu, ...");
- `pre_score(pod, cluster, feasible)`: the same for scoring, or SKIP;
- `score(state, pod, nodes)`: a raw number for each feasible node (one pass over
  the list: cheaper in Python than a call per node);
- `normalize(state, nodes, scores)`: the raw scores of all feasible nodes
  mapped to 0..100, where upstream normalizes; without it the score already is.

The total of a node is the sum of weight x score; the highest total wins.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.scheduler.cache import (
    AffinityTerm,
    Cluster,
    NodeInfo,
    Obj,
    PodInfo,
    SpreadConstraint,
    pod_requests,
    untolerated,
)

__all__ = ["PLUGINS", "Cluster", "NodeInfo", "PodInfo", "filter_node", "find_feasible", "node_affinity",
           "nodes_to_find", "pod_requests", "score_nodes", "select_host", "unschedulable_message",
           "untolerated_taint"]

MAX_SCORE = 100
HOSTNAME = "kubernetes.io/hostname"
HARD_POD_AFFINITY_WEIGHT = 1  # upstream's hardPodAffinityWeight default
SKIP: Any = object()  # what a pre_filter / pre_score returns when its plugin has nothing to do


@dataclass(frozen=True)
class Plugin:
    name: str
    filter: Callable[[Any, PodInfo, NodeInfo], str | list[str] | None] | None = None
    pre_filter: Callable[[PodInfo, Cluster], Any] | None = None
    score: Callable[[Any, PodInfo, list[NodeInfo]], list[float]] | None = None
    pre_score: Callable[[PodInfo, Cluster, list[NodeInfo]], Any] | None = None
    normalize: Callable[[Any, list[NodeInfo], list[float]], list[float]] | None = None
    weight: int = 1


# ------------------------------------------------------------------------ node filters

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def pre_filter_unschedulable(pod: PodInfo, cluster: Cluster) -> Any:
    if not cluster.any_flagged("unschedulable") or untolerated(pod.tolerations, [UNSCHEDULABLE_TAINT]) is None:
        return SKIP
    return None


def node_unschedulable(_state: Any, _pod: PodInfo, node: NodeInfo) -> str | None:
    return "node(s) were unschedulable" if node.unschedulable else None


def pre_filter_node_name(pod: PodInfo, _cluster: Cluster) -> Any:
    return None if pod.node_name else SKIP


def node_name(_state: Any, pod: PodInfo, node: NodeInfo) -> str | None:
    return None if pod.node_name == node.name else "node(s) didn't match the requested node name"


def pre_filter_node_ready(_pod: PodInfo, cluster: Cluster) -> Any:
    return None if cluster.any_flagged("not-ready") else SKIP


def node_ready(_state: Any, pod: PodInfo, node: NodeInfo) -> str | None:
    """A node whose Ready condition is not True, as the not-ready/unreachable taints would say."""
    taint = node.readiness_taint
    if taint is None or untolerated(pod.tolerations, [taint]) is None:
        return None
    return f"node(s) had untolerated taint {{{taint['key']}: }}"


def pre_filter_taints(_pod: PodInfo, cluster: Cluster) -> Any:
    return None if cluster.any_flagged("tainted") else SKIP


def taint_toleration(_state: Any, pod: PodInfo, node: NodeInfo) -> str | None:
    if not node.hard_taints:
        return None
    taint = untolerated(pod.tolerations, node.hard_taints)
    if taint is None:
        return None
    return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"


def node_affinity_matches(pod: PodInfo, node: NodeInfo) -> bool:
    labels = node.labels
    if any(labels.get(k) != v for k, v in pod.node_selector.items()):
        return False
    terms = pod.required_node_terms
    return not terms or any(t.matches(node.name, labels) for t in terms)


def pre_filter_node_affinity(pod: PodInfo, _cluster: Cluster) -> Any:
    return None if pod.node_selector or pod.required_node_terms else SKIP


def filter_node_affinity(_state: Any, pod: PodInfo, node: NodeInfo) -> str | None:
    return None if node_affinity_matches(pod, node) else "node(s) didn't match Pod's node affinity/selector"


def pre_filter_node_ports(pod: PodInfo, _cluster: Cluster) -> Any:
    return None if pod.host_ports else SKIP


def node_ports(_state: Any, pod: PodInfo, node: NodeInfo) -> str | None:
    for ip, proto, port in pod.host_ports:
        for uip, uproto, uport in node.ports:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return "node(s) didn't have free ports for the requested pod ports"
    return None


def resources_fit(_state: Any, pod: PodInfo, node: NodeInfo) -> list[str] | None:
    """All the resources that do not fit (upstream reports each one)."""
    if (len(node.pods) < node.alloc_pods and (not pod.cpu or node.cpu + pod.cpu <= node.alloc_cpu)
            and (not pod.memory or node.memory + pod.memory <= node.alloc_memory)
            and (not pod.storage or node.storage + pod.storage <= node.alloc_storage)):
        return None  # the common case, decided without building anything (this runs for hundreds of nodes)
    too_many = len(node.pods) + 1 > node.alloc_pods
    cpu = bool(pod.cpu) and node.cpu + pod.cpu > node.alloc_cpu
    memory = bool(pod.memory) and node.memory + pod.memory > node.alloc_memory
    storage = bool(pod.storage) and node.storage + pod.storage > node.alloc_storage
    if not (too_many or cpu or memory or storage):
        return None
    return [reason for failed, reason in ((too_many, "Too many pods"), (cpu, "Insufficient cpu"),
                                          (memory, "Insufficient memory"),
                                          (storage, "Insufficient ephemeral-storage")) if failed]


# ------------------------------------------------------------------- inter-pod affinity

Domain = tuple[str, str]  # (topology key, value)


def _domain(node: NodeInfo, key: str) -> Domain | None:
    value = node.labels.get(key)
    return None if value is None else (key, value)


@dataclass
class AffinityFilterState:
    existing_anti: Counter[Domain]  # domains where a placed pod's required anti-affinity selects this pod
    affinity: Counter[Domain]  # domains holding pods that match all of this pod's affinity terms
    anti: Counter[Domain]  # domains holding pods this pod's anti-affinity terms select
    first_of_group: bool  # nothing matches the affinity terms anywhere, and the pod matches them itself


def _existing_anti_affinity(pod: PodInfo, cluster: Cluster) -> Counter[Domain]:
    counts: Counter[Domain] = Counter()
    for node in cluster.with_required_anti_affinity():
        for other in node.pods.values():
            for term in other.required_anti_affinity:
                domain = _domain(node, term.topology_key)
                if domain is not None and term.matches(pod, cluster.namespace_labels):
                    counts[domain] += 1
    return counts


def _incoming_counts(pod: PodInfo, cluster: Cluster) -> tuple[Counter[Domain], Counter[Domain]]:
    affinity: Counter[Domain] = Counter()
    anti: Counter[Domain] = Counter()
    namespace_labels = cluster.namespace_labels
    for node in cluster:
        for other in node.pods.values():
            if pod.required_affinity and all(t.matches(other, namespace_labels) for t in pod.required_affinity):
                for term in pod.required_affinity:
                    if (domain := _domain(node, term.topology_key)) is not None:
                        affinity[domain] += 1
            for term in pod.required_anti_affinity:
                if term.matches(other, namespace_labels) and (domain := _domain(node, term.topology_key)) is not None:
                    anti[domain] += 1
    return affinity, anti


def pre_filter_inter_pod_affinity(pod: PodInfo, cluster: Cluster) -> Any:
    existing = _existing_anti_affinity(pod, cluster)
    if not (existing or pod.required_affinity or pod.required_anti_affinity):
        return SKIP
    affinity, anti = _incoming_counts(pod, cluster) if pod.required_affinity or pod.required_anti_affinity \
        else (Counter(), Counter())
    first = not affinity and all(t.matches(pod, cluster.namespace_labels) for t in pod.required_affinity)
    return AffinityFilterState(existing, affinity, anti, first)


def _satisfies_affinity(state: AffinityFilterState, pod: PodInfo, node: NodeInfo) -> bool:
    found = True
    for term in pod.required_affinity:
        domain = _domain(node, term.topology_key)
        if domain is None:
            return False  # every topology key of the terms must be on the node
        if state.affinity[domain] <= 0:
            found = False
    return found or state.first_of_group


def inter_pod_affinity(state: AffinityFilterState, pod: PodInfo, node: NodeInfo) -> str | None:
    if not _satisfies_affinity(state, pod, node):
        return "node(s) didn't match pod affinity rules"
    for term in pod.required_anti_affinity:
        domain = _domain(node, term.topology_key)
        if domain is not None and state.anti[domain] > 0:
            return "node(s) didn't match pod anti-affinity rules"
    for (key, value) in state.existing_anti:
        if node.labels.get(key) == value:
            return "node(s) didn't satisfy existing pods anti-affinity rules"
    return None


def _add_term_score(scores: dict[str, Counter[str]], term: AffinityTerm, target: PodInfo, node: NodeInfo,
                    weight: int, namespace_labels: dict[str, dict[str, str]]) -> None:
    value = node.labels.get(term.topology_key)
    if value is not None and term.matches(target, namespace_labels):
        scores.setdefault(term.topology_key, Counter())[value] += weight


def _score_existing_pod(scores: dict[str, Counter[str]], pod: PodInfo, other: PodInfo, node: NodeInfo,
                        namespace_labels: dict[str, dict[str, str]]) -> None:
    """What one placed pod adds to (or takes from) its topology domains for the incoming pod."""
    for term in pod.preferred_affinity:
        _add_term_score(scores, term, other, node, term.weight, namespace_labels)
    for term in pod.preferred_anti_affinity:
        _add_term_score(scores, term, other, node, -term.weight, namespace_labels)
    for term in other.required_affinity:
        _add_term_score(scores, term, pod, node, HARD_POD_AFFINITY_WEIGHT, namespace_labels)
    for term in other.preferred_affinity:
        _add_term_score(scores, term, pod, node, term.weight, namespace_labels)
    for term in other.preferred_anti_affinity:
        _add_term_score(scores, term, pod, node, -term.weight, namespace_labels)


def pre_score_inter_pod_affinity(pod: PodInfo, cluster: Cluster, _feasible: list[NodeInfo]) -> Any:
    """Weights per topology domain: the incoming pod's preferred terms over every placed pod, and
    placed pods' required/preferred affinity and preferred anti-affinity terms that select it."""
    every_pod = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
    nodes = list(cluster) if every_pod else cluster.with_affinity()
    if not nodes:
        return SKIP
    scores: dict[str, Counter[str]] = {}
    for node in nodes:
        if not node.labels:
            continue
        for other in node.pods.values():
            if every_pod or other.has_affinity:
                _score_existing_pod(scores, pod, other, node, cluster.namespace_labels)
    return scores


def inter_pod_affinity_score(scores: dict[str, Counter[str]], _pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    return [float(sum(by_value[node.labels[key]] for key, by_value in scores.items() if key in node.labels))
            for node in nodes]


def normalize_min_max(scores_by_domain: dict[str, Counter[str]], _nodes: list[NodeInfo],
                      scores: list[float]) -> list[float]:
    """Upstream's InterPodAffinity normalization: the lowest maps to 0, the highest to 100."""
    if not scores_by_domain or not scores:
        return scores
    low, high = min(scores), max(scores)
    if high == low:
        return [0.0] * len(scores)
    return [float(int(MAX_SCORE * (s - low) / (high - low))) for s in scores]


# ---------------------------------------------------------------- pod topology spread

def _matching(node: NodeInfo, constraint: SpreadConstraint, namespace: str) -> int:
    """Pods on `node` the constraint counts: same namespace, selected, not terminating."""
    return sum(1 for p in node.pods.values()
               if p.namespace == namespace and not p.terminating and constraint.selector.matches(p.labels))


def _has_keys(node: NodeInfo, constraints: Sequence[SpreadConstraint]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


def _included(pod: PodInfo, node: NodeInfo, constraint: SpreadConstraint, affinity_ok: bool) -> bool:
    """Upstream's node inclusion policies: whether the node's pods count for the constraint.
    nodeAffinityPolicy Honor (default): only nodes matching the pod's nodeSelector/required affinity;
    nodeTaintsPolicy Honor: only nodes whose NoSchedule/NoExecute taints the pod tolerates."""
    if constraint.honor_node_affinity and not affinity_ok:
        return False
    return not (constraint.honor_node_taints and node.hard_taints
                and untolerated(pod.tolerations, node.hard_taints) is not None)


@dataclass
class SpreadFilterState:
    constraints: list[SpreadConstraint]
    counts: list[Counter[str]]  # per constraint: topology value -> matching pods
    minimum: list[int]
    self_match: list[int]


def pre_filter_topology_spread(pod: PodInfo, cluster: Cluster) -> Any:
    hard = [c for c in pod.spread_constraints if c.hard]
    if not hard:
        return SKIP
    counts: list[Counter[str]] = [Counter() for _ in hard]
    for node in cluster:
        if not _has_keys(node, hard):
            continue
        affinity_ok = node_affinity_matches(pod, node)
        for i, c in enumerate(hard):
            if _included(pod, node, c, affinity_ok):
                counts[i][node.labels[c.topology_key]] += _matching(node, c, pod.namespace)
    # The global minimum over the eligible domains; with fewer domains than minDomains it is 0, so that
    # pods go to new domains (upstream's minMatchNum).
    minimum = [0 if not cnt or (c.min_domains is not None and len(cnt) < c.min_domains) else min(cnt.values())
               for c, cnt in zip(hard, counts, strict=True)]
    return SpreadFilterState(hard, counts, minimum, [int(c.selector.matches(pod.labels)) for c in hard])


def topology_spread(state: SpreadFilterState, pod: PodInfo, node: NodeInfo) -> str | None:
    for i, c in enumerate(state.constraints):
        value = node.labels.get(c.topology_key)
        if value is None:
            return "node(s) didn't match pod topology spread constraints (missing required label)"
        if state.counts[i][value] + state.self_match[i] - state.minimum[i] > c.max_skew:
            return "node(s) didn't match pod topology spread constraints"
    return None


@dataclass
class SpreadScoreState:
    constraints: list[SpreadConstraint]
    ignored: set[str]  # feasible nodes missing a topology key: scored 0
    counts: list[Counter[str]]  # per constraint (not hostname): value -> matching pods
    weights: list[float]  # per constraint: log(number of domains + 2)


def pre_score_topology_spread(pod: PodInfo, cluster: Cluster, feasible: list[NodeInfo]) -> Any:
    soft = [c for c in pod.spread_constraints if not c.hard]
    if not soft:
        return SKIP
    ignored = {n.name for n in feasible if not _has_keys(n, soft)}
    domains: list[set[str]] = [set() for _ in soft]
    for node in feasible:
        if node.name not in ignored:
            for i, c in enumerate(soft):
                if c.topology_key != HOSTNAME:
                    domains[i].add(node.labels[c.topology_key])
    counts: list[Counter[str]] = [Counter() for _ in soft]
    for node in cluster:  # every node the pod could go to counts, not only the feasible ones
        if not _has_keys(node, soft):
            continue
        affinity_ok = node_affinity_matches(pod, node)
        for i, c in enumerate(soft):
            value = node.labels[c.topology_key]
            if c.topology_key != HOSTNAME and value in domains[i] and _included(pod, node, c, affinity_ok):
                counts[i][value] += _matching(node, c, pod.namespace)
    sizes = [len(feasible) - len(ignored) if c.topology_key == HOSTNAME else len(domains[i])
             for i, c in enumerate(soft)]
    return SpreadScoreState(soft, ignored, counts, [math.log(size + 2) for size in sizes])


def topology_spread_score(state: SpreadScoreState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    return [_spread_score(state, pod, node) for node in nodes]


def _spread_score(state: SpreadScoreState, pod: PodInfo, node: NodeInfo) -> float:
    if node.name in state.ignored:
        return 0.0
    total = 0.0
    for i, c in enumerate(state.constraints):
        value = node.labels[c.topology_key]
        count = _matching(node, c, pod.namespace) if c.topology_key == HOSTNAME else state.counts[i][value]
        total += count * state.weights[i] + (c.max_skew - 1)
    return float(round(total))


def normalize_topology_spread(state: SpreadScoreState, nodes: list[NodeInfo], scores: list[float]) -> list[float]:
    """Fewer matching pods score higher: (max + min - score) / max; ignored nodes get 0."""
    counted = [s for n, s in zip(nodes, scores, strict=True) if n.name not in state.ignored]
    if not counted:
        return [0.0] * len(scores)
    low, high = int(min(counted)), int(max(counted))
    return [0.0 if n.name in state.ignored else
            float(MAX_SCORE if high == 0 else MAX_SCORE * (high + low - int(s)) // high)
            for n, s in zip(nodes, scores, strict=True)]


# ------------------------------------------------------------------------ other scores

def normalize_default(_state: Any, _nodes: list[NodeInfo], scores: list[float]) -> list[float]:
    """Upstream's default normalization: the highest raw score maps to 100."""
    high = max(scores, default=0)
    return scores if high <= 0 else [float(MAX_SCORE * s // high) for s in scores]


def normalize_reverse(_state: Any, _nodes: list[NodeInfo], scores: list[float]) -> list[float]:
    """The same, reversed: the highest raw count maps to 0, none to 100."""
    high = max(scores, default=0)
    if high <= 0:
        return [float(MAX_SCORE)] * len(scores)
    return [float(MAX_SCORE - MAX_SCORE * s // high) for s in scores]


def least_allocated(_state: Any, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Upstream's NodeResourcesLeastAllocated: per resource (capacity - requested) * 100 // capacity, 0 when
    over capacity, then the integer mean of cpu and memory (weights 1). Requests are the non-zero ones: a
    container asking for nothing counts 100m CPU and 200Mi memory."""
    cpu, mem = pod.nonzero_cpu, pod.nonzero_memory
    # One expression per node, inlined: this runs for hundreds of nodes per pod.
    return [(((ac - uc) * MAX_SCORE // ac if 0 < (ac := n.alloc_cpu) and (uc := n.nonzero_cpu + cpu) <= ac else 0)
             + ((am - um) * MAX_SCORE // am if 0 < (am := n.alloc_memory) and (um := n.nonzero_memory + mem) <= am
                else 0)) // 2
            for n in nodes]


def pre_score_balanced(pod: PodInfo, _cluster: Cluster, _feasible: list[NodeInfo]) -> Any:
    """Upstream skips a best-effort pod (it requests no cpu and no memory): every node would score the
    same for it, except that an emptier one would look less balanced (kubernetes issue 129138)."""
    return SKIP if not pod.cpu and not pod.memory else None


def balanced_allocation(_state: Any, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Upstream's NodeResourcesBalancedAllocation: the fractions of allocatable cpu and memory in use with
    the pod (actual requests, each at most 1), and int((1 - |cpu - memory| / 2) * 100) — one minus their
    standard deviation. A node without one of them scores 100 (one fraction: deviation 0)."""
    cpu, mem = pod.cpu, pod.memory
    return [int((1 - abs((c if (c := (n.cpu + cpu) / n.alloc_cpu) < 1 else 1)
                         - (m if (m := (n.memory + mem) / n.alloc_memory) < 1 else 1)) / 2) * MAX_SCORE)
            if n.alloc_cpu and n.alloc_memory else MAX_SCORE
            for n in nodes]


def pre_score_node_affinity(pod: PodInfo, _cluster: Cluster, _feasible: list[NodeInfo]) -> Any:
    return None if pod.preferred_node_terms else SKIP


def preferred_node_affinity(_state: Any, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    return [float(sum(weight for weight, term in pod.preferred_node_terms if term.matches(node.name, node.labels)))
            for node in nodes]


def pre_score_taints(_pod: PodInfo, cluster: Cluster, _feasible: list[NodeInfo]) -> Any:
    return None if cluster.any_flagged("soft-tainted") else SKIP


def prefer_no_schedule(_state: Any, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """How many PreferNoSchedule taints the pod does not tolerate (fewer is better)."""
    tolerations = [t for t in pod.tolerations if t.get("effect") in (None, "", "PreferNoSchedule")]
    return [float(sum(1 for taint in node.soft_taints if untolerated(tolerations, [taint]) is not None))
            for node in nodes]


def pre_score_owner(pod: PodInfo, _cluster: Cluster, _feasible: list[NodeInfo]) -> Any:
    return SKIP if pod.owner_uid is None else pod.owner_uid


def same_owner(owner: str, _pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Pods of the same controller on each node (fewer is better: upstream's default spreading)."""
    return [float(node.owners.get(owner, 0)) for node in nodes]


# ------------------------------------------------------------------------ the framework

PLUGINS: tuple[Plugin, ...] = (
    # Filters run in this order; the first that fails decides the node's reason.
    Plugin("NodeUnschedulable", filter=node_unschedulable, pre_filter=pre_filter_unschedulable),
    Plugin("NodeName", filter=node_name, pre_filter=pre_filter_node_name),
    Plugin("NodeReady", filter=node_ready, pre_filter=pre_filter_node_ready),
    Plugin("TaintToleration", filter=taint_toleration, pre_filter=pre_filter_taints, score=prefer_no_schedule, pre_score=pre_score_taints,
           normalize=normalize_reverse, weight=3),
    Plugin("NodeAffinity", filter=filter_node_affinity, pre_filter=pre_filter_node_affinity, score=preferred_node_affinity,
           pre_score=pre_score_node_affinity, normalize=normalize_default, weight=2),
    Plugin("NodePorts", filter=node_ports, pre_filter=pre_filter_node_ports),
    Plugin("NodeResourcesFit", filter=resources_fit, score=least_allocated),
    Plugin("InterPodAffinity", filter=inter_pod_affinity, pre_filter=pre_filter_inter_pod_affinity,
           score=inter_pod_affinity_score, pre_score=pre_score_inter_pod_affinity, normalize=normalize_min_max,
           weight=2),
    Plugin("PodTopologySpread", filter=topology_spread, pre_filter=pre_filter_topology_spread,
           score=topology_spread_score, pre_score=pre_score_topology_spread, normalize=normalize_topology_spread,
           weight=2),
    Plugin("NodeResourcesBalancedAllocation", score=balanced_allocation, pre_score=pre_score_balanced),
    Plugin("SelectorSpread", score=same_owner, pre_score=pre_score_owner, normalize=normalize_reverse, weight=2),
)

Check = tuple[Callable[[Any, PodInfo, NodeInfo], "str | list[str] | None"], Any]


def prepare_filters(pod: PodInfo, cluster: Cluster, plugins: Sequence[Plugin] = PLUGINS) -> list[Check]:
    """The filters that apply to this pod, each with its pre-computed state."""
    checks = []
    for plugin in plugins:
        if plugin.filter is None:
            continue
        state = plugin.pre_filter(pod, cluster) if plugin.pre_filter is not None else None
        if state is not SKIP:
            checks.append((plugin.filter, state))
    return checks


def run_filters(checks: list[Check], pod: PodInfo, node: NodeInfo) -> list[str]:
    """Reasons this node cannot take the pod (empty: it can). The first failing plugin decides."""
    for check, state in checks:
        why = check(state, pod, node)
        if why:
            return why if isinstance(why, list) else [why]
    return []


def as_pod_info(pod: Obj | PodInfo) -> PodInfo:
    return pod if isinstance(pod, PodInfo) else PodInfo(pod)


def filter_node(pod: Obj | PodInfo, node: NodeInfo, cluster: Cluster | None = None) -> list[str]:
    """One node's verdict (for tests and tools; the loop uses find_feasible)."""
    info = as_pod_info(pod)
    return run_filters(prepare_filters(info, cluster or Cluster.of([node])), info, node)


def find_feasible(pod: PodInfo, cluster: Cluster, start: int, enough: int
                  ) -> tuple[list[NodeInfo], dict[str, int], int]:
    """Walk the nodes from `start` (wrapping) until `enough` fit: (feasible, reason counts, nodes checked)."""
    checks = prepare_filters(pod, cluster)
    nodes = cluster.order
    feasible: list[NodeInfo] = []
    reasons: Counter[str] = Counter()
    checked = 0
    for node in itertools.chain(nodes[start:], nodes[:start]):
        checked += 1
        for check, state in checks:
            why = check(state, pod, node)
            if why:
                if isinstance(why, list):
                    reasons.update(why)
                else:
                    reasons[why] += 1
                break
        else:
            feasible.append(node)
            if len(feasible) >= enough:
                break
    return feasible, dict(reasons), checked


def score_nodes(pod: Obj | PodInfo, cluster: Cluster, nodes: list[NodeInfo],
                plugins: Sequence[Plugin] = PLUGINS) -> list[float]:
    """Weighted totals of every score plugin for `nodes` (the feasible ones), each normalized first."""
    info = as_pod_info(pod)
    totals: list[float] | None = None
    for plugin in plugins:
        if plugin.score is None:
            continue
        state = plugin.pre_score(info, cluster, nodes) if plugin.pre_score is not None else None
        if state is SKIP:
            continue
        raw = plugin.score(state, info, nodes)
        if plugin.normalize is not None:
            raw = plugin.normalize(state, nodes, raw)
        weight = plugin.weight
        if totals is None:
            totals = raw if weight == 1 else [weight * s for s in raw]
        else:
            totals = [t + weight * s for t, s in zip(totals, raw, strict=True)]
    return totals if totals is not None else [0.0] * len(nodes)


def select_host(pod: Obj | PodInfo, cluster: Cluster, feasible: list[NodeInfo],
                rng: random.Random | None = None) -> NodeInfo:
    """The feasible node with the highest total. Ties are broken as upstream does, uniformly at
    random, with `rng`; without one, the greater name wins, for tables."""
    if len(feasible) == 1:
        return feasible[0]
    totals = score_nodes(pod, cluster, feasible)
    best = max(totals)
    tied = [node for node, total in zip(feasible, totals, strict=True) if total == best]
    if rng is None:
        return max(tied, key=lambda node: node.name)
    return tied[rng.randrange(len(tied))] if len(tied) > 1 else tied[0]


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


# ------------------------------------------------ single-node checks on plain objects

def node_affinity(pod: Obj, info: NodeInfo) -> str | None:
    """NodeAffinity/nodeSelector of a pod object on one node (the DaemonSet controller asks too)."""
    return filter_node_affinity(None, PodInfo(pod), info)


def untolerated_taint(pod: Obj, info: NodeInfo, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
                      ) -> Obj | None:
    taints = [t for t in (info.node.get("spec") or {}).get("taints") or [] if t.get("effect") in effects]
    taint = untolerated((pod.get("spec") or {}).get("tolerations") or [], taints)
    return None if taint is None else dict(taint)
