"""The scheduling table: for each plugin, cases that pass and cases that fail with upstream's words."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from controlplane.scheduler.plugins import (
    PLUGINS,
    SKIP,
    Cluster,
    NodeInfo,
    PodInfo,
    filter_node,
    score_nodes,
    select_host,
    unschedulable_message,
)


def node(name: str = "n1", *, cpu: str = "2", memory: str = "4Gi", pods: int = 110, ready: str = "True",
         labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {"kubernetes.io/hostname": name}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)},
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(cpu: str | None = None, memory: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: dict[str, Any] = {"name": "c", "image": "i", "resources": {"requests": requests}}
    if "host_port" in spec:
        container["ports"] = [{"containerPort": 80, "hostPort": spec.pop("host_port"), "protocol": "TCP"}]
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [container], **spec}}


CASES = [
    # (plugin, pod, node, running pods, expected reasons)
    ("fits", pod("500m", "1Gi"), node(), [], []),
    ("NodeResourcesFit cpu", pod("3"), node(cpu="2"), [], ["Insufficient cpu"]),
    ("NodeResourcesFit memory+cpu", pod("3", "8Gi"), node(), [], ["Insufficient cpu", "Insufficient memory"]),
    ("NodeResourcesFit counts bound pods", pod("1"), node(cpu="2"), [pod("1500m")], ["Insufficient cpu"]),
    ("NodeResourcesFit pods", pod(), node(pods=1), [pod()], ["Too many pods"]),
    ("NodeUnschedulable", pod(), node(unschedulable=True), [], ["node(s) were unschedulable"]),
    ("NodeUnschedulable tolerated", pod(tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                                      "operator": "Exists", "effect": "NoSchedule"}]),
     node(unschedulable=True), [], []),
    ("NodeName", pod(nodeName="other"), node(), [], ["node(s) didn't match the requested node name"]),
    ("NodeSelector", pod(nodeSelector={"disk": "ssd"}), node(), [],
     ["node(s) didn't match Pod's node affinity/selector"]),
    ("NodeSelector ok", pod(nodeSelector={"disk": "ssd"}), node(labels={"disk": "ssd"}), [], []),
    ("NodeAffinity required", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}),
     node(labels={"zone": "b"}), [], ["node(s) didn't match Pod's node affinity/selector"]),
    ("NodeAffinity matchFields", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}),
     node(), [], []),
    ("TaintToleration", pod(), node(taints=[{"key": "node-role.kubernetes.io/control-plane",
                                             "effect": "NoSchedule"}]), [],
     ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]),
    ("TaintToleration tolerated", pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]),
     node(taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]), [], []),
    ("TaintToleration PreferNoSchedule passes", pod(), node(taints=[{"key": "k", "effect": "PreferNoSchedule"}]),
     [], []),
    ("NodeReady", pod(), node(ready="False"), [], ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]),
    ("NodeReady unknown", pod(), node(ready="Unknown"), [],
     ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]),
    ("NodePorts", pod(host_port=8080), node(), [pod(host_port=8080)],
     ["node(s) didn't have free ports for the requested pod ports"]),
    ("NodePorts free", pod(host_port=8080), node(), [pod(host_port=9090)], []),
]


@pytest.mark.parametrize(("plugin", "the_pod", "the_node", "running", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_filters(plugin: str, the_pod: dict[str, Any], the_node: dict[str, Any], running: list[dict[str, Any]],
                 expected: list[str]) -> None:
    assert filter_node(the_pod, NodeInfo(the_node, running)) == expected


def test_scores_prefer_emptier_and_preferred_nodes() -> None:
    busy, idle = NodeInfo(node("busy"), [pod("1500m", "3Gi")]), NodeInfo(node("idle"))
    cluster = Cluster.of([busy, idle])
    totals = score_nodes(pod("100m"), cluster, [busy, idle])
    assert totals[1] > totals[0]
    preferring = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}})
    zone_a, zone_b = NodeInfo(node("a", labels={"zone": "a"})), NodeInfo(node("b", labels={"zone": "b"}))
    assert select_host(preferring, Cluster.of([zone_a, zone_b]), [zone_a, zone_b]) is zone_a


def test_unschedulable_message_is_upstreams() -> None:
    message = unschedulable_message(3, {"Insufficient cpu": 2,
                                        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }": 1})
    assert message == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                       "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are "
                       "available: 3 Preemption is not helpful for scheduling.")


def zone_cluster(pods_by_node: dict[str, list[dict[str, Any]]]) -> tuple[Cluster, dict[str, NodeInfo]]:
    """Three 2-CPU nodes: a1 and a2 in zone a, b1 in zone b."""
    zones = {"a1": "a", "a2": "a", "b1": "b"}
    infos = {n: NodeInfo(node(n, labels={"kubernetes.io/hostname": n, "zone": z}), pods_by_node.get(n, []))
             for n, z in zones.items()}
    return Cluster.of(infos.values()), infos


def labelled(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    p = pod(**spec)
    p["metadata"]["labels"] = labels
    return p


def test_pod_affinity_requires_a_matching_pod_in_the_zone() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
    web = labelled({"app": "web"}, affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})
    cluster, infos = zone_cluster({"a1": [labelled({"app": "db"})]})
    assert filter_node(web, infos["a2"], cluster) == []  # same zone as the db pod
    assert filter_node(web, infos["b1"], cluster) == ["node(s) didn't match pod affinity rules"]
    # The first pod of a group that selects itself may go anywhere.
    alone, alone_infos = zone_cluster({})
    first = labelled({"app": "db"}, affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}})
    assert filter_node(first, alone_infos["b1"], alone) == []
    assert filter_node(web, alone_infos["b1"], alone) == ["node(s) didn't match pod affinity rules"]


def test_pod_anti_affinity_both_ways() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
    spread = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    cluster, infos = zone_cluster({"a1": [labelled({"app": "web"})]})
    assert filter_node(labelled({"app": "web"}, affinity=spread), infos["a1"], cluster) == [
        "node(s) didn't match pod anti-affinity rules"]
    assert filter_node(labelled({"app": "web"}, affinity=spread), infos["a2"], cluster) == []
    guarded, guarded_infos = zone_cluster({"a1": [labelled({"app": "x"}, affinity=spread)]})
    assert filter_node(labelled({"app": "web"}), guarded_infos["a1"], guarded) == [
        "node(s) didn't satisfy existing pods anti-affinity rules"]
    assert filter_node(labelled({"app": "web"}), guarded_infos["a2"], guarded) == []


def test_topology_spread_max_skew() -> None:
    constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "web"}}}
    cluster, infos = zone_cluster({"a1": [labelled({"app": "web"})], "a2": [labelled({"app": "web"})]})
    incoming = labelled({"app": "web"}, topologySpreadConstraints=[constraint])
    assert filter_node(incoming, infos["a1"], cluster) == ["node(s) didn't match pod topology spread constraints"]
    assert filter_node(incoming, infos["b1"], cluster) == []
    bare = NodeInfo(node("nolabel"))
    assert filter_node(incoming, bare) == [
        "node(s) didn't match pod topology spread constraints (missing required label)"]


# ------------------------------------------------------------------ score plugins
# (case, incoming pod, pods placed per node of zone_cluster, node that must win, node that must not win)

def soft_affinity(kind: str, app: str, key: str, weight: int = 100) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": term}]}}


def heavy(app: str = "other") -> dict[str, Any]:
    return labelled({"app": app}, cpu="1")


def soft_spread(key: str = "zone", app: str = "web") -> list[dict[str, Any]]:
    return [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": app}}}]


def in_namespace(p: dict[str, Any], namespace: str) -> dict[str, Any]:
    p["metadata"]["namespace"] = namespace
    return p


SCORE_CASES = [
    # InterPodAffinity
    ("IPA preferred affinity pulls to the db's zone over emptier nodes",
     labelled({"app": "web"}, affinity=soft_affinity("podAffinity", "db", "zone")),
     {"b1": [heavy("db")]}, "b1", None),
    ("IPA preferred affinity ignores pods of another namespace",
     labelled({"app": "web"}, affinity=soft_affinity("podAffinity", "db", "zone")),
     {"b1": [in_namespace(heavy("db"), "other")]}, None, "b1"),
    ("IPA preferred affinity by hostname prefers the very node",
     labelled({"app": "web"}, affinity=soft_affinity("podAffinity", "db", "kubernetes.io/hostname")),
     {"a1": [heavy("db")]}, "a1", None),
    ("IPA preferred anti-affinity pushes out of the zone, even to a busier node",
     labelled({"app": "web"}, affinity=soft_affinity("podAntiAffinity", "web", "zone")),
     {"a1": [labelled({"app": "web"})], "b1": [heavy()]}, "b1", None),
    ("IPA preferred anti-affinity to pods that are nowhere changes nothing",
     labelled({"app": "web"}, affinity=soft_affinity("podAntiAffinity", "cache", "zone")),
     {"a1": [labelled({"app": "web"})], "b1": [heavy()]}, "a2", "b1"),
    ("IPA an existing pod's required affinity that selects the pod attracts it",
     labelled({"app": "web"}),
     {"b1": [labelled({"app": "sidecar"}, cpu="1", affinity={"podAffinity": {
         "requiredDuringSchedulingIgnoredDuringExecution": [
             {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}})]},
     "b1", None),
    ("IPA an existing pod's required affinity that does not select the pod changes nothing",
     labelled({"app": "api"}),
     {"b1": [labelled({"app": "sidecar"}, cpu="1", affinity={"podAffinity": {
         "requiredDuringSchedulingIgnoredDuringExecution": [
             {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}})]},
     None, "b1"),
    ("IPA an existing pod's preferred anti-affinity repels the pod from its emptier node",
     labelled({"app": "web"}),
     {"a1": [heavy()], "b1": [heavy()],
      "a2": [labelled({"app": "db"}, affinity=soft_affinity("podAntiAffinity", "web", "kubernetes.io/hostname"))]},
     None, "a2"),
    ("IPA preferred affinity never overrides a filter",
     labelled({"app": "web"}, cpu="1500m", affinity=soft_affinity("podAffinity", "db", "zone")),
     {"b1": [heavy("db")]}, None, "b1"),
    # PodTopologySpread (ScheduleAnyway)
    ("PTS ScheduleAnyway prefers the zone with fewer matching pods, even on a busier node",
     labelled({"app": "web"}, topologySpreadConstraints=soft_spread()),
     {"a1": [labelled({"app": "web"})], "b1": [heavy()]}, "b1", None),
    ("PTS ScheduleAnyway counts only pods its selector matches",
     labelled({"app": "web"}, topologySpreadConstraints=soft_spread()),
     {"a1": [labelled({"app": "other"})], "b1": [heavy()]}, "a2", "b1"),
    ("PTS ScheduleAnyway counts only the pod's namespace",
     labelled({"app": "web"}, topologySpreadConstraints=soft_spread()),
     {"a1": [in_namespace(labelled({"app": "web"}), "other")], "b1": [heavy()]}, "a2", "b1"),
    ("PTS ScheduleAnyway by hostname prefers a node without matching pods",
     labelled({"app": "web"}, topologySpreadConstraints=soft_spread("kubernetes.io/hostname")),
     {"a1": [labelled({"app": "web"})], "a2": [labelled({"app": "web"})], "b1": [heavy("db")]}, "b1", None),
    ("PTS ScheduleAnyway never overrides a filter",
     labelled({"app": "web"}, cpu="1500m", topologySpreadConstraints=soft_spread()),
     {"a1": [labelled({"app": "web"})], "b1": [heavy()]}, None, "b1"),
]


@pytest.mark.parametrize(("case", "incoming", "placed", "winner", "loser"), SCORE_CASES,
                         ids=[c[0] for c in SCORE_CASES])
def test_score_plugins(case: str, incoming: dict[str, Any], placed: dict[str, list[dict[str, Any]]],
                       winner: str | None, loser: str | None) -> None:
    cluster, infos = zone_cluster(placed)
    feasible = [info for info in infos.values() if not filter_node(incoming, info, cluster)]
    chosen = select_host(incoming, cluster, feasible).name
    if winner is not None:
        assert chosen == winner
    if loser is not None:
        assert chosen != loser


@pytest.mark.parametrize("plugin", ["InterPodAffinity", "PodTopologySpread"])
def test_new_scores_are_normalized_to_0_100(plugin: str) -> None:
    one = next(p for p in PLUGINS if p.name == plugin)
    for _case, incoming, placed, _winner, _loser in SCORE_CASES:
        cluster, infos = zone_cluster(placed)
        info, nodes = PodInfo(incoming), list(infos.values())
        assert one.pre_score is not None and one.score is not None and one.normalize is not None
        state = one.pre_score(info, cluster, nodes)
        if state is SKIP:
            continue
        scores = one.normalize(state, nodes, one.score(state, info, nodes))
        assert all(0 <= s <= 100 for s in scores)
        if len(set(scores)) > 1:
            assert max(scores) == 100


def test_topology_spread_score_ignores_nodes_without_the_key() -> None:
    cluster, infos = zone_cluster({"a1": [labelled({"app": "web"})]})
    bare = NodeInfo(node("bare"))
    cluster = Cluster.of([*infos.values(), bare])
    incoming = PodInfo(labelled({"app": "web"}, topologySpreadConstraints=soft_spread()))
    spread = next(p for p in PLUGINS if p.name == "PodTopologySpread")
    assert spread.pre_score is not None and spread.score is not None and spread.normalize is not None
    nodes = list(cluster)
    state = spread.pre_score(incoming, cluster, nodes)
    scores = spread.normalize(state, nodes, spread.score(state, incoming, nodes))
    assert dict(zip([n.name for n in nodes], scores, strict=True)) == {"a1": 0, "a2": 0, "b1": 100, "bare": 0}


def test_inter_pod_affinity_normalization_is_min_max() -> None:
    cluster, _ = zone_cluster({"a1": [labelled({"app": "db"})], "b1": [labelled({"app": "web"})]})
    incoming = PodInfo(labelled({"app": "web"}, affinity={
        **soft_affinity("podAffinity", "db", "zone", 30), **soft_affinity("podAntiAffinity", "web", "zone", 10)}))
    plugin = next(p for p in PLUGINS if p.name == "InterPodAffinity")
    assert plugin.pre_score is not None and plugin.score is not None and plugin.normalize is not None
    nodes = list(cluster)
    state = plugin.pre_score(incoming, cluster, nodes)
    raw = plugin.score(state, incoming, nodes)
    assert raw == [30, 30, -10]  # zone a: +30 (db there), zone b: -10 (web there)
    assert plugin.normalize(state, nodes, raw) == [100, 100, 0]


def _plugin_scores(name: str, incoming: dict[str, Any], nodes: list[NodeInfo]) -> list[float] | None:
    plugin = next(p for p in PLUGINS if p.name == name)
    assert plugin.score is not None
    info = PodInfo(incoming)
    state = plugin.pre_score(info, Cluster.of(nodes), nodes) if plugin.pre_score is not None else None
    return None if state is SKIP else plugin.score(state, info, nodes)


def test_resource_scores_are_upstreams_integer_formulas() -> None:
    # 2 CPUs and 4Gi; the busy node runs 1500m and 3Gi. The pod asks 100m and no memory.
    busy, idle = NodeInfo(node("busy"), [pod("1500m", "3Gi")]), NodeInfo(node("idle"))
    # LeastAllocated counts the pod's memory as the 200Mi default: busy cpu (2000-1600)*100//2000 = 20,
    # memory (4Gi - 3Gi - 200Mi)*100//4Gi = 20; idle 95 and 95. The node's score is their integer mean.
    assert _plugin_scores("NodeResourcesFit", pod("100m"), [busy, idle]) == [20.0, 95.0]
    # BalancedAllocation uses the actual requests: busy cpu 0.8, memory 0.75 -> int((1 - 0.025) * 100) = 97;
    # idle cpu 0.05, memory 0 -> 97 as well.
    assert _plugin_scores("NodeResourcesBalancedAllocation", pod("100m"), [busy, idle]) == [97.0, 97.0]
    # A pod asking 1 CPU and 1Gi: busy is over on cpu (score 0) with memory (4Gi-4Gi)*100//4Gi = 0;
    # balanced caps cpu at 1: |1 - 1| -> 100. Idle: cpu 0.5, memory 0.25 -> int(87.5) = 87.
    assert _plugin_scores("NodeResourcesFit", pod("1", "1Gi"), [busy, idle]) == [0.0, (50 + 75) // 2]
    assert _plugin_scores("NodeResourcesBalancedAllocation", pod("1", "1Gi"), [busy, idle]) == [100.0, 87.0]


def test_balanced_allocation_skips_best_effort_pods() -> None:
    busy, idle = NodeInfo(node("busy"), [pod("1500m", "3Gi")]), NodeInfo(node("idle"))
    assert _plugin_scores("NodeResourcesBalancedAllocation", pod(), [busy, idle]) is None
    assert select_host(pod(), Cluster.of([busy, idle]), [busy, idle]) is idle  # LeastAllocated still decides


def test_ties_are_broken_at_random_among_the_best_only() -> None:
    equal = [NodeInfo(node(f"n{i}")) for i in range(4)]
    busier = NodeInfo(node("busier"), [pod("1", "2Gi")])
    feasible = [busier, *equal]
    cluster = Cluster.of(feasible)
    rng = random.Random(7)
    chosen = Counter(select_host(pod("100m"), cluster, feasible, rng).name for _ in range(400))
    assert set(chosen) == {"n0", "n1", "n2", "n3"}, "every equally scored node gets picked, the worse one never"
    assert min(chosen.values()) > 50, chosen  # roughly uniform: 100 each expected
    assert select_host(pod("100m"), cluster, feasible).name == "n3"  # without a generator: the greater name


SPREAD_BY_ZONE = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "web"}}}


def test_topology_spread_min_domains_treats_the_minimum_as_zero_until_enough_domains_exist() -> None:
    # One web pod in each zone: every zone is at 1, so another pod fits anywhere (skew 2 - 1 = 1)...
    cluster, infos = zone_cluster({"a1": [labelled({"app": "web"})], "b1": [labelled({"app": "web"})]})
    plain = labelled({"app": "web"}, topologySpreadConstraints=[SPREAD_BY_ZONE])
    assert filter_node(plain, infos["a2"], cluster) == []
    # ...but with minDomains 3 and only two zones the global minimum counts as 0: 1 + 1 - 0 > 1.
    wants_three = labelled({"app": "web"}, topologySpreadConstraints=[{**SPREAD_BY_ZONE, "minDomains": 3}])
    assert filter_node(wants_three, infos["a2"], cluster) == ["node(s) didn't match pod topology spread constraints"]
    # With two domains wanted there are enough, and the real minimum (1) applies again.
    wants_two = labelled({"app": "web"}, topologySpreadConstraints=[{**SPREAD_BY_ZONE, "minDomains": 2}])
    assert filter_node(wants_two, infos["a2"], cluster) == []


def test_topology_spread_match_label_keys_count_only_the_pods_own_revision() -> None:
    by_revision = {**SPREAD_BY_ZONE, "matchLabelKeys": ["pod-template-hash"]}
    old = {"app": "web", "pod-template-hash": "old"}
    cluster, infos = zone_cluster({"a1": [labelled(old)], "a2": [labelled(old)]})
    incoming = labelled({"app": "web", "pod-template-hash": "new"}, topologySpreadConstraints=[by_revision])
    assert filter_node(incoming, infos["a1"], cluster) == []  # the old revision's pods are not counted
    counted = labelled({"app": "web", "pod-template-hash": "old"}, topologySpreadConstraints=[by_revision])
    assert filter_node(counted, infos["a1"], cluster) == ["node(s) didn't match pod topology spread constraints"]


def test_topology_spread_node_inclusion_policies() -> None:
    # Zone b's only node is tainted; two web pods run in zone a.
    zones = {"a1": ("a", []), "b1": ("b", [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])}
    infos = {n: NodeInfo(node(n, labels={"kubernetes.io/hostname": n, "zone": z}, taints=t),
                         [labelled({"app": "web"}), labelled({"app": "web"})] if n == "a1" else [])
             for n, (z, t) in zones.items()}
    cluster = Cluster.of(infos.values())
    # Taints ignored (default): zone b counts with 0, so a third pod in zone a has skew 3 - 0 > 1.
    ignoring = labelled({"app": "web"}, topologySpreadConstraints=[SPREAD_BY_ZONE])
    assert filter_node(ignoring, infos["a1"], cluster) == ["node(s) didn't match pod topology spread constraints"]
    # Taints honored: the untolerated zone b is not a domain at all, so zone a is the minimum itself.
    honoring = labelled({"app": "web"}, topologySpreadConstraints=[{**SPREAD_BY_ZONE, "nodeTaintsPolicy": "Honor"}])
    assert filter_node(honoring, infos["a1"], cluster) == []
    # Node affinity honored (default) versus ignored, with a nodeSelector that only zone a matches.
    selective = {"nodeSelector": {"zone": "a"}}
    honors = labelled({"app": "web"}, topologySpreadConstraints=[SPREAD_BY_ZONE], **selective)
    assert filter_node(honors, infos["a1"], cluster) == []
    ignores = labelled({"app": "web"}, topologySpreadConstraints=[{**SPREAD_BY_ZONE, "nodeAffinityPolicy": "Ignore"}],
                       **selective)
    assert filter_node(ignores, infos["a1"], cluster) == ["node(s) didn't match pod topology spread constraints"]


def test_pod_affinity_namespace_selector_looks_in_namespaces_by_their_labels() -> None:
    cluster, infos = zone_cluster({"a1": [in_namespace(labelled({"app": "db"}), "shop")]})
    cluster.namespace_labels.update({"shop": {"env": "prod"}, "default": {"env": "dev"}})

    def wants_db_in(env_selector: dict[str, Any]) -> dict[str, Any]:
        term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
                "namespaceSelector": env_selector}
        return labelled({"app": "web"}, affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            term]}})

    prod = wants_db_in({"matchLabels": {"env": "prod"}})
    assert filter_node(prod, infos["a2"], cluster) == []  # the db pod's namespace has env=prod
    assert filter_node(prod, infos["b1"], cluster) == ["node(s) didn't match pod affinity rules"]
    dev = wants_db_in({"matchLabels": {"env": "dev"}})
    assert filter_node(dev, infos["a2"], cluster) == ["node(s) didn't match pod affinity rules"]
    assert filter_node(wants_db_in({}), infos["a2"], cluster) == []  # empty: every namespace

    # A placed pod's anti-affinity reaches the incoming pod through its namespace's labels too.
    guard = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone",
         "namespaceSelector": {"matchLabels": {"env": "dev"}}}]}}
    guarded, guarded_infos = zone_cluster({"a1": [in_namespace(labelled({"app": "x"}, affinity=guard), "shop")]})
    guarded.namespace_labels.update({"shop": {"env": "prod"}, "default": {"env": "dev"}})
    assert filter_node(labelled({"app": "web"}), guarded_infos["a2"], guarded) == [
        "node(s) didn't satisfy existing pods anti-affinity rules"]
    assert filter_node(labelled({"app": "web"}), guarded_infos["b1"], guarded) == []
