"""The scheduler cache: running totals per node, and assumed pods through binding, failure and deletion."""

from __future__ import annotations

import random
from typing import Any

from controlplane.scheduler.cache import Cluster, PodInfo


def node(name: str, cpu: str = "2") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "500m", node_name: str = "", phase: str = "Pending",
        host_port: int | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}
    if host_port:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port}]
    return {"metadata": {"name": name, "namespace": "default", "ownerReferences": [
        {"uid": "rs-1", "controller": True}]}, "spec": {"nodeName": node_name, "containers": [container]},
        "status": {"phase": phase}}


def cluster_of(*names: str) -> Cluster:
    cluster = Cluster()
    for name in names:
        cluster.set_node(node(name))
    return cluster


def totals(cluster: Cluster, name: str) -> tuple[int, int, int, dict[str, int]]:
    info = cluster.nodes[name]
    return len(info.pods), info.cpu, info.nonzero_cpu, dict(info.owners)


def test_totals_follow_adds_and_removes() -> None:
    cluster = cluster_of("n1")
    cluster.update_pod(pod("a", node_name="n1", host_port=8080))
    cluster.update_pod(pod("b", "250m", node_name="n1"))
    assert totals(cluster, "n1") == (2, 750, 750, {"rs-1": 2})
    assert dict(cluster.nodes["n1"].ports) == {("0.0.0.0", "TCP", 8080): 1}
    cluster.update_pod(pod("b", "1", node_name="n1"))  # an update replaces, never adds twice
    assert totals(cluster, "n1") == (2, 1500, 1500, {"rs-1": 2})
    cluster.remove_pod("default/a")
    assert totals(cluster, "n1") == (1, 1000, 1000, {"rs-1": 1})
    assert not cluster.nodes["n1"].ports
    cluster.update_pod(pod("b", "1", node_name="n1", phase="Succeeded"))  # finished pods free their node
    assert totals(cluster, "n1") == (0, 0, 0, {})


def test_assumed_then_bound_counts_once() -> None:
    cluster = cluster_of("n1", "n2")
    cluster.assume(PodInfo(pod("a")), "n1")
    assert cluster.is_assumed("default/a") and totals(cluster, "n1")[:2] == (1, 500)
    cluster.update_pod(pod("a"))  # a status write on the still-pending pod keeps the assumption
    assert cluster.is_assumed("default/a") and totals(cluster, "n1")[:2] == (1, 500)
    cluster.update_pod(pod("a", node_name="n1"))  # the watch shows the binding
    assert not cluster.is_assumed("default/a") and totals(cluster, "n1")[:2] == (1, 500)
    cluster.forget("default/a")  # too late to forget: the binding is real
    assert totals(cluster, "n1")[:2] == (1, 500)


def test_bind_failure_forgets_the_assumed_pod() -> None:
    cluster = cluster_of("n1")
    cluster.assume(PodInfo(pod("a")), "n1")
    cluster.forget("default/a")
    assert not cluster.is_assumed("default/a") and totals(cluster, "n1") == (0, 0, 0, {})
    cluster.assume(PodInfo(pod("a")), "n1")  # and the retry can assume it again
    assert totals(cluster, "n1")[:2] == (1, 500)


def test_deleting_an_assumed_pod_frees_its_node() -> None:
    cluster = cluster_of("n1")
    cluster.assume(PodInfo(pod("a")), "n1")
    cluster.remove_pod("default/a")
    assert not cluster.is_assumed("default/a") and totals(cluster, "n1") == (0, 0, 0, {})
    cluster.forget("default/a")  # the failing binding that follows changes nothing
    assert totals(cluster, "n1") == (0, 0, 0, {})


def test_bound_elsewhere_moves_the_pod() -> None:
    cluster = cluster_of("n1", "n2")
    cluster.assume(PodInfo(pod("a")), "n1")
    cluster.update_pod(pod("a", node_name="n2"))  # another scheduler won the race
    assert totals(cluster, "n1")[:2] == (0, 0) and totals(cluster, "n2")[:2] == (1, 500)


def test_pods_of_unknown_nodes_wait_for_their_node() -> None:
    cluster = cluster_of("n1")
    cluster.update_pod(pod("a", node_name="late"))
    cluster.set_node(node("late"))
    assert totals(cluster, "late")[:2] == (1, 500)
    cluster.remove_node("late")
    assert [n.name for n in cluster] == ["n1"]
    cluster.remove_pod("default/a")
    cluster.set_node(node("late"))
    assert totals(cluster, "late")[:2] == (0, 0)


def test_node_flags_follow_node_updates() -> None:
    cluster = cluster_of("n1", "n2")
    assert not any(cluster.any_flagged(f) for f in ("unschedulable", "not-ready", "tainted", "soft-tainted"))
    cordoned = node("n1")
    cordoned["spec"] = {"unschedulable": True, "taints": [{"key": "k", "effect": "NoSchedule"},
                                                          {"key": "s", "effect": "PreferNoSchedule"}]}
    cordoned["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    cluster.set_node(cordoned)
    assert all(cluster.any_flagged(f) for f in ("unschedulable", "not-ready", "tainted", "soft-tainted"))
    cluster.set_node(node("n1"))
    assert not any(cluster.any_flagged(f) for f in ("unschedulable", "not-ready", "tainted", "soft-tainted"))
    cluster.set_node(cordoned)
    cluster.remove_node("n1")
    assert not any(cluster.any_flagged(f) for f in ("unschedulable", "not-ready", "tainted", "soft-tainted"))


def test_nodes_with_affinity_pods_are_tracked() -> None:
    cluster = cluster_of("n1", "n2")
    guarded = pod("g", node_name="n2")
    guarded["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    cluster.update_pod(guarded)
    assert [n.name for n in cluster.with_required_anti_affinity()] == ["n2"]
    assert [n.name for n in cluster.with_affinity()] == ["n2"]
    cluster.remove_pod("default/g")
    assert cluster.with_required_anti_affinity() == [] and cluster.with_affinity() == []


def test_assumed_pods_keep_nothing_of_their_scheduling_cycle() -> None:
    from controlplane.scheduler.scheduler import Scheduler

    cluster = cluster_of("n1", "n2")
    scheduler = Scheduler.__new__(Scheduler)  # only the scheduling cycle, no client
    scheduler.cache, scheduler._next_start, scheduler.tie_breaker = cluster, 0, random.Random(0)
    info = PodInfo(pod("a"))
    node_name, _ = scheduler.schedule(info)
    assert node_name in ("n1", "n2") and cluster.is_assumed("default/a")
    assert info.cycle == {}
