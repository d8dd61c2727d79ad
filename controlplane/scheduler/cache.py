"""The scheduler's cache: every node with the pods on it, kept up to date incrementally.

A pod is parsed once (`PodInfo`) when it enters the cache or comes up for
scheduling: requests, host ports, tolerations, selectors and affinity terms.
Each `NodeInfo` keeps running totals of what its pods request, the host ports
they use and how many pods each owner has there, adjusted on every add and
remove instead of being re-summed for each decision.

A pod the scheduler has placed is *assumed* on its node at once, so the next
decision already counts it; it is *forgotten* if its binding fails, and its
assumed copy is replaced by the real one when the watch shows the binding.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.api.meta import key_of
from controlplane.api.quantity import milli, whole
from controlplane.api.selectors import LabelSelector, Requirement, selector_from_spec

Obj = dict[str, Any]
HostPort = tuple[str, str, int]
DEFAULT_MILLI_CPU_REQUEST = 100  # upstream's non-zero defaults, used for scoring only
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
TERMINAL = ("Succeeded", "Failed")


def pod_requests(pod: Obj) -> dict[str, int]:
    """Effective requests: max(sum of containers, largest init container), per resource."""
    spec = pod.get("spec") or {}

    def of(c: Obj) -> tuple[int, int, int]:
        req = (c.get("resources") or {}).get("requests") or {}
        return milli(req.get("cpu", 0)), whole(req.get("memory", 0)), whole(req.get("ephemeral-storage", 0))

    total = [0, 0, 0]
    for c in spec.get("containers") or []:
        for i, v in enumerate(of(c)):
            total[i] += v
    for c in spec.get("initContainers") or []:
        for i, v in enumerate(of(c)):
            total[i] = max(total[i], v)
    return {"cpu": total[0], "memory": total[1], "ephemeral-storage": total[2]}


def _nonzero_requests(pod: Obj) -> tuple[int, int]:
    """CPU and memory as scoring sees them: a container that requests nothing counts the defaults."""
    spec = pod.get("spec") or {}
    cpu = mem = 0
    for c in spec.get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += milli(req["cpu"]) if "cpu" in req else DEFAULT_MILLI_CPU_REQUEST
        mem += whole(req["memory"]) if "memory" in req else DEFAULT_MEMORY_REQUEST
    for c in spec.get("initContainers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu = max(cpu, milli(req["cpu"]) if "cpu" in req else DEFAULT_MILLI_CPU_REQUEST)
        mem = max(mem, whole(req["memory"]) if "memory" in req else DEFAULT_MEMORY_REQUEST)
    return cpu, mem


def host_ports(pod: Obj) -> frozenset[HostPort]:
    ports = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                ports.add((p.get("hostIP") or "0.0.0.0", p.get("protocol", "TCP"), int(p["hostPort"])))
    return frozenset(ports)


# ------------------------------------------------------------------------------ terms

@dataclass(frozen=True)
class NodeSelectorTerm:
    """One nodeSelectorTerm: label requirements (In/NotIn/Exists/DoesNotExist), Gt/Lt, metadata.name."""

    labels: LabelSelector
    numeric: tuple[tuple[str, str, int | None], ...] = ()  # (key, Gt|Lt, bound); None: unparseable
    names: tuple[tuple[bool, frozenset[str]], ...] = ()  # (In?, names)

    @classmethod
    def parse(cls, term: Obj) -> NodeSelectorTerm:
        requirements: list[Requirement] = []
        numeric: list[tuple[str, str, int | None]] = []
        names: list[tuple[bool, frozenset[str]]] = []
        for expr in term.get("matchExpressions") or []:
            op, values = expr.get("operator"), tuple(str(v) for v in expr.get("values") or ())
            if op in ("Gt", "Lt"):
                try:
                    numeric.append((expr["key"], op, int(values[0])))
                except (ValueError, IndexError):
                    numeric.append((expr["key"], op, None))
            else:
                requirements.append(Requirement(expr["key"], op, values))
        for expr in term.get("matchFields") or []:
            if expr.get("key") == "metadata.name":
                names.append((expr.get("operator") == "In", frozenset(expr.get("values") or ())))
        return cls(LabelSelector(tuple(requirements)), tuple(numeric), tuple(names))

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        for key, op, bound in self.numeric:
            value = labels.get(key)
            try:
                if value is None or bound is None or not (int(value) > bound if op == "Gt" else int(value) < bound):
                    return False
            except ValueError:
                return False
        if any((name in values) != inside for inside, values in self.names):
            return False
        return self.labels.matches(labels)


@dataclass(frozen=True)
class AffinityTerm:
    """A pod (anti-)affinity term, parsed: which pods it selects and over which topology key.

    The namespaces it looks in are upstream's: those listed plus those whose labels its
    namespaceSelector matches; an empty namespaceSelector means every namespace, and neither
    field means the owning pod's own namespace."""

    selector: LabelSelector
    namespaces: frozenset[str] | None  # None: every namespace (an empty namespaceSelector)
    topology_key: str
    weight: int = 1
    namespace_selector: LabelSelector | None = None  # a non-empty namespaceSelector

    @classmethod
    def parse(cls, term: Obj, owner_namespace: str, weight: int = 1) -> AffinityTerm:
        namespaces: frozenset[str] | None = frozenset(term.get("namespaces") or ())
        ns_selector = term.get("namespaceSelector")
        by_labels = None
        if ns_selector == {}:
            namespaces = None
        elif ns_selector is not None:
            by_labels = selector_from_spec(ns_selector)
        elif not namespaces:
            namespaces = frozenset((owner_namespace,))
        return cls(selector_from_spec(term.get("labelSelector")), namespaces, term.get("topologyKey", ""), weight,
                   by_labels)

    def matches(self, pod: PodInfo, namespace_labels: Mapping[str, dict[str, str]]) -> bool:
        """Whether the term selects `pod`; `namespace_labels` are the labels of every known namespace."""
        if not (self.namespaces is None or pod.namespace in self.namespaces
                or (self.namespace_selector is not None
                    and self.namespace_selector.matches(namespace_labels.get(pod.namespace) or {}))):
            return False
        return self.selector.matches(pod.labels)


@dataclass(frozen=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool  # whenUnsatisfiable: DoNotSchedule (filter) or ScheduleAnyway (score)
    selector: LabelSelector  # labelSelector, ANDed with the pod's own values of matchLabelKeys
    min_domains: int | None = None  # fewer eligible domains than this: the global minimum counts as 0
    honor_node_affinity: bool = True  # nodeAffinityPolicy: Honor (default) or Ignore
    honor_node_taints: bool = False  # nodeTaintsPolicy: Ignore (default) or Honor

    @classmethod
    def parse(cls, constraint: Obj, pod_labels: dict[str, str]) -> SpreadConstraint:
        selector_spec = constraint.get("labelSelector")
        own = {k: pod_labels[k] for k in constraint.get("matchLabelKeys") or () if k in pod_labels}
        if own and selector_spec is not None:
            selector_spec = {**selector_spec, "matchLabels": {**(selector_spec.get("matchLabels") or {}), **own}}
        min_domains = constraint.get("minDomains")
        return cls(int(constraint.get("maxSkew", 1)), constraint.get("topologyKey", ""),
                   constraint.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule",
                   selector_from_spec(selector_spec), int(min_domains) if min_domains is not None else None,
                   constraint.get("nodeAffinityPolicy", "Honor") != "Ignore",
                   constraint.get("nodeTaintsPolicy", "Ignore") == "Honor")


# ------------------------------------------------------------------------------ pods

def _section(spec: Obj, kind: str) -> Obj:
    return ((spec.get("affinity") or {}).get(kind)) or {}


@dataclass(eq=False)
class PodInfo:
    """One pod, parsed once for every plugin that looks at it."""

    pod: Obj

    def __post_init__(self) -> None:
        md, spec = self.pod["metadata"], self.pod.get("spec") or {}
        self.key = key_of(self.pod)
        self.name: str = md["name"]
        self.namespace: str = md.get("namespace") or "default"
        self.labels: dict[str, str] = md.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        req = pod_requests(self.pod)
        self.cpu, self.memory, self.storage = req["cpu"], req["memory"], req["ephemeral-storage"]
        self.nonzero_cpu, self.nonzero_memory = _nonzero_requests(self.pod)
        self.host_ports = host_ports(self.pod)
        self.tolerations: list[Obj] = list(spec.get("tolerations") or [])
        self.node_selector: dict[str, str] = dict(spec.get("nodeSelector") or {})
        self.owner_uid: str | None = next((r.get("uid") for r in md.get("ownerReferences") or []
                                           if r.get("controller")), None)
        self.terminating = bool(md.get("deletionTimestamp"))
        # Scratch space of one scheduling cycle, shared by plugins (upstream's CycleState).
        self.cycle: dict[str, Any] = {}

    @functools.cached_property
    def required_node_terms(self) -> tuple[NodeSelectorTerm, ...]:
        required = _section(self.pod.get("spec") or {}, "nodeAffinity").get(
            "requiredDuringSchedulingIgnoredDuringExecution") or {}
        return tuple(NodeSelectorTerm.parse(t) for t in required.get("nodeSelectorTerms") or [])

    @functools.cached_property
    def preferred_node_terms(self) -> tuple[tuple[int, NodeSelectorTerm], ...]:
        preferred = _section(self.pod.get("spec") or {}, "nodeAffinity").get(
            "preferredDuringSchedulingIgnoredDuringExecution") or []
        return tuple((int(p.get("weight", 0)), NodeSelectorTerm.parse(p.get("preference") or {})) for p in preferred)

    def _terms(self, kind: str, hard: bool) -> tuple[AffinityTerm, ...]:
        section = _section(self.pod.get("spec") or {}, kind)
        if hard:
            return tuple(AffinityTerm.parse(t, self.namespace)
                         for t in section.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        return tuple(AffinityTerm.parse(w.get("podAffinityTerm") or {}, self.namespace, int(w.get("weight", 0)))
                     for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or [])

    @functools.cached_property
    def required_affinity(self) -> tuple[AffinityTerm, ...]:
        return self._terms("podAffinity", True)

    @functools.cached_property
    def required_anti_affinity(self) -> tuple[AffinityTerm, ...]:
        return self._terms("podAntiAffinity", True)

    @functools.cached_property
    def preferred_affinity(self) -> tuple[AffinityTerm, ...]:
        return self._terms("podAffinity", False)

    @functools.cached_property
    def preferred_anti_affinity(self) -> tuple[AffinityTerm, ...]:
        return self._terms("podAntiAffinity", False)

    @functools.cached_property
    def has_affinity(self) -> bool:
        """Any pod (anti-)affinity term at all: such pods are what other pods' scoring must visit."""
        return bool(self.required_affinity or self.required_anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)

    @functools.cached_property
    def spread_constraints(self) -> tuple[SpreadConstraint, ...]:
        return tuple(SpreadConstraint.parse(c, self.labels)
                     for c in (self.pod.get("spec") or {}).get("topologySpreadConstraints") or [])


# ------------------------------------------------------------------------------ nodes

def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator", "Equal")
    if op == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", "")


def untolerated(tolerations: list[Obj], taints: Iterable[Obj]) -> Obj | None:
    """The first taint no toleration tolerates (None: all are tolerated)."""
    for taint in taints:
        if not any(_tolerates(t, taint) for t in tolerations):
            return taint
    return None


class NodeInfo:
    """One node and the pods on it (bound or assumed), with totals kept up to date."""

    def __init__(self, node: Obj, pods: Iterable[Obj | PodInfo] = ()) -> None:
        self.pods: dict[str, PodInfo] = {}
        self.cpu = self.memory = self.storage = 0  # sums of requests
        self.nonzero_cpu = self.nonzero_memory = 0
        self.ports: Counter[HostPort] = Counter()
        self.owners: Counter[str] = Counter()
        self.with_affinity = 0  # pods having any (anti-)affinity term
        self.with_required_anti_affinity = 0
        self.set_node(node)
        for pod in pods:
            self.add(pod if isinstance(pod, PodInfo) else PodInfo(pod))

    def set_node(self, node: Obj) -> None:
        md, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
        self.node = node
        self.name: str = md["name"]
        self.labels: dict[str, str] = dict(md.get("labels") or {})
        alloc = status.get("allocatable") or {}
        self.alloc_cpu = milli(alloc.get("cpu", 0))
        self.alloc_memory = whole(alloc.get("memory", 0))
        self.alloc_storage = whole(alloc.get("ephemeral-storage", 0))
        self.alloc_pods = int(whole(alloc.get("pods", 0)))
        self.unschedulable = bool(spec.get("unschedulable"))
        taints = [dict(t) for t in spec.get("taints") or []]
        self.hard_taints = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")]
        self.soft_taints = [t for t in taints if t.get("effect") == "PreferNoSchedule"]
        # The taint a node that is not Ready would carry (None: Ready).
        self.readiness_taint: Obj | None = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Ready":
                if cond.get("status") == "True":
                    self.readiness_taint = None
                elif cond.get("status") == "Unknown":
                    self.readiness_taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
                break

    def add(self, pod: PodInfo) -> None:
        if pod.key in self.pods:
            self.remove(pod.key)
        self.pods[pod.key] = pod
        self._account(pod, 1)

    def remove(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is not None:
            self._account(pod, -1)
        return pod

    def _account(self, pod: PodInfo, sign: int) -> None:
        self.cpu += sign * pod.cpu
        self.memory += sign * pod.memory
        self.storage += sign * pod.storage
        self.nonzero_cpu += sign * pod.nonzero_cpu
        self.nonzero_memory += sign * pod.nonzero_memory
        for port in pod.host_ports:
            self.ports[port] += sign
            if self.ports[port] <= 0:
                del self.ports[port]
        if pod.owner_uid is not None:
            self.owners[pod.owner_uid] += sign
            if self.owners[pod.owner_uid] <= 0:
                del self.owners[pod.owner_uid]
        if pod.has_affinity:
            self.with_affinity += sign
        if pod.required_anti_affinity:
            self.with_required_anti_affinity += sign

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, {len(self.pods)} pods)"


class Cluster:
    """Every node (in a stable order, for the rotating search) and where each pod is.

    It also tracks what lets plugins skip work for most pods: which nodes hold pods
    with (anti-)affinity terms, and how many nodes are cordoned, not Ready or tainted.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.order: list[NodeInfo] = []
        # pod key -> node name, for every pod in a NodeInfo (bound or assumed), even on unknown nodes
        self.where: dict[str, str] = {}
        self.assumed: set[str] = set()
        # pods bound to nodes the cache has not seen (yet, or any more), by node name
        self.orphans: dict[str, dict[str, PodInfo]] = {}
        # nodes that are "unschedulable", "not-ready", "tainted" (NoSchedule/NoExecute), "soft-tainted"
        self.flagged: Counter[str] = Counter()
        self._with_affinity: dict[str, NodeInfo] = {}
        self._with_anti_affinity: dict[str, NodeInfo] = {}
        # namespace -> its labels, for affinity terms with a namespaceSelector
        self.namespace_labels: dict[str, dict[str, str]] = {}

    @classmethod
    def of(cls, infos: Iterable[NodeInfo]) -> Cluster:
        cluster = cls()
        for info in infos:
            cluster._add_info(info)
        return cluster

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)

    # -- nodes ---------------------------------------------------------------------------

    @staticmethod
    def _flags(info: NodeInfo) -> list[str]:
        return [flag for flag, on in (("unschedulable", info.unschedulable),
                                      ("not-ready", info.readiness_taint is not None),
                                      ("tainted", bool(info.hard_taints)),
                                      ("soft-tainted", bool(info.soft_taints))) if on]

    def _add_info(self, info: NodeInfo) -> None:
        self.nodes[info.name] = info
        self.order.append(info)
        self.flagged.update(self._flags(info))
        for key in info.pods:
            self.where[key] = info.name
        self._track(info)

    def set_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            self._add_info(NodeInfo(node, self.orphans.pop(name, {}).values()))
            return
        self.flagged.subtract(self._flags(info))
        info.set_node(node)
        self.flagged.update(self._flags(info))

    def remove_node(self, name: str) -> None:
        info = self.nodes.pop(name, None)
        if info is None:
            return
        self.order = [n for n in self.order if n is not info]
        self.flagged.subtract(self._flags(info))
        self._with_affinity.pop(name, None)
        self._with_anti_affinity.pop(name, None)
        if info.pods:  # pods stay accounted until they go, as upstream keeps them
            self.orphans[name] = dict(info.pods)

    def _track(self, info: NodeInfo) -> None:
        for tracked, count in ((self._with_affinity, info.with_affinity),
                               (self._with_anti_affinity, info.with_required_anti_affinity)):
            if count:
                tracked[info.name] = info
            else:
                tracked.pop(info.name, None)

    # -- pods ----------------------------------------------------------------------------

    def _place(self, pod: PodInfo, node: str) -> None:
        self._unplace(pod.key)
        self.where[pod.key] = node
        info = self.nodes.get(node)
        if info is not None:
            info.add(pod)
            if pod.has_affinity:
                self._track(info)
        else:
            self.orphans.setdefault(node, {})[pod.key] = pod

    def _unplace(self, key: str) -> None:
        node = self.where.pop(key, None)
        if node is None:
            return
        info = self.nodes.get(node)
        if info is not None:
            pod = info.remove(key)
            if pod is not None and pod.has_affinity:
                self._track(info)
        else:
            self.orphans.get(node, {}).pop(key, None)

    def update_pod(self, pod: Obj) -> None:
        """A pod as the watch shows it: bound pods are placed (replacing an assumed copy)."""
        if not (pod.get("spec") or {}).get("nodeName") or (pod.get("status") or {}).get("phase") in TERMINAL:
            key = key_of(pod)
            if key not in self.assumed:
                self._unplace(key)
            return
        info = PodInfo(pod)
        self.assumed.discard(info.key)
        self._place(info, info.node_name)

    def remove_pod(self, key: str) -> None:
        self.assumed.discard(key)
        self._unplace(key)

    def assume(self, pod: PodInfo, node: str) -> None:
        """Count `pod` on `node` now, before the binding is written."""
        self.assumed.add(pod.key)
        self._place(pod, node)

    def forget(self, key: str) -> None:
        """Undo `assume` (the binding failed); a pod the watch already shows bound stays."""
        if key in self.assumed:
            self.assumed.discard(key)
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    # -- for plugins ------------------------------------------------------------------------

    def any_flagged(self, flag: str) -> bool:
        return self.flagged[flag] > 0

    def with_affinity(self) -> list[NodeInfo]:
        return list(self._with_affinity.values())

    def with_required_anti_affinity(self) -> list[NodeInfo]:
        return list(self._with_anti_affinity.values())
