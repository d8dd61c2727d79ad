"""The scheduling table: for each plugin, cases that pass and cases that fail with upstream's words."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.plugins import (
    ClusterView,
    NodeInfo,
    filter_node,
    least_allocated,
    score_node,
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
    assert least_allocated(pod("100m"), idle) > least_allocated(pod("100m"), busy)
    preferring = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}})
    zone_a, zone_b = NodeInfo(node("a", labels={"zone": "a"})), NodeInfo(node("b", labels={"zone": "b"}))
    assert score_node(preferring, zone_a) > score_node(preferring, zone_b)


def test_unschedulable_message_is_upstreams() -> None:
    message = unschedulable_message(3, {"Insufficient cpu": 2,
                                        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }": 1})
    assert message == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                       "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are "
                       "available: 3 Preemption is not helpful for scheduling.")


def zone_cluster(pods_by_node: dict[str, list[dict[str, Any]]]) -> dict[str, NodeInfo]:
    zones = {"a1": "a", "a2": "a", "b1": "b"}
    infos = {n: NodeInfo(node(n, labels={"kubernetes.io/hostname": n, "zone": z}), pods_by_node.get(n, []))
             for n, z in zones.items()}
    ClusterView(list(infos.values()))
    return infos


def labelled(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    p = pod(**spec)
    p["metadata"]["labels"] = labels
    return p


def test_pod_affinity_requires_a_matching_pod_in_the_zone() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
    web = labelled({"app": "web"}, affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})
    infos = zone_cluster({"a1": [labelled({"app": "db"})]})
    assert filter_node(web, infos["a2"]) == []  # same zone as the db pod
    assert filter_node(web, infos["b1"]) == ["node(s) didn't match pod affinity rules"]


def test_pod_anti_affinity_both_ways() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
    spread = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    infos = zone_cluster({"a1": [labelled({"app": "web"})]})
    assert filter_node(labelled({"app": "web"}, affinity=spread), infos["a1"]) == [
        "node(s) didn't match pod anti-affinity rules"]
    assert filter_node(labelled({"app": "web"}, affinity=spread), infos["a2"]) == []
    guarded = zone_cluster({"a1": [labelled({"app": "x"}, affinity=spread)]})
    assert filter_node(labelled({"app": "web"}), guarded["a1"]) == [
        "node(s) didn't satisfy existing pods anti-affinity rules"]


def test_topology_spread_max_skew() -> None:
    constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "web"}}}
    infos = zone_cluster({"a1": [labelled({"app": "web"})], "a2": [labelled({"app": "web"})]})
    incoming = labelled({"app": "web"}, topologySpreadConstraints=[constraint])
    assert filter_node(incoming, infos["a1"]) == ["node(s) didn't match pod topology spread constraints"]
    assert filter_node(incoming, infos["b1"]) == []
    bare = NodeInfo(node("nolabel"))
    assert filter_node(incoming, bare) == [
        "node(s) didn't match pod topology spread constraints (missing required label)"]
