"""Kubelet admission: a pod that does not fit the node is refused with upstream's reason and message."""

from __future__ import annotations

from typing import Any

import pytest

from agent.admission import Rejection, admit

Obj = dict[str, Any]


def node(cpu: str = "2", memory: str = "4Gi", pods: str = "3", labels: Obj | None = None,
         taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "n1", "labels": labels or {"kubernetes.io/hostname": "n1"}},
            "spec": {"taints": taints or []},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "10Gi"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str | None = None, memory: str | None = None, **spec: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: Obj = {"name": "c", "image": "x", "resources": {"requests": requests} if requests else {}}
    if "host_port" in spec:
        container["ports"] = [{"containerPort": 80, "hostPort": spec.pop("host_port"), "protocol": "TCP"}]
    return {"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": "n1", "containers": [container], **spec}}


CASES: list[tuple[str, Obj, list[Obj], Obj, Rejection | None]] = [
    ("fits", pod("a", cpu="500m"), [pod("b", cpu="1")], node(), None),
    ("cpu", pod("a", cpu="1500m"), [pod("b", cpu="1")], node(),
     Rejection("OutOfcpu", "Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000")),
    ("memory", pod("a", memory="3Gi"), [pod("b", memory="2Gi")], node(),
     Rejection("OutOfmemory", "Node didn't have enough resource: memory, requested: 3221225472, "
                              "used: 2147483648, capacity: 4294967296")),
    ("pods", pod("a"), [pod("b"), pod("c"), pod("d")], node(),
     Rejection("OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3")),
    ("selector", pod("a", nodeSelector={"disk": "ssd"}), [], node(),
     Rejection("NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector")),
    ("selector matches", pod("a", nodeSelector={"disk": "ssd"}), [], node(labels={"disk": "ssd"}), None),
    ("host port", pod("a", host_port=8080), [pod("b", host_port=8080)], node(),
     Rejection("NodePorts", "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod "
                            "ports")),
    ("no-execute taint", pod("a"), [], node(taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
     Rejection("TaintToleration", "Predicate TaintToleration failed: node(s) had taints that the pod didn't "
                                  "tolerate")),
    ("no-schedule taint is the scheduler's business", pod("a"), [],
     node(taints=[{"key": "k", "effect": "NoSchedule"}]), None),
    ("tolerated", pod("a", tolerations=[{"key": "k", "operator": "Exists"}]), [],
     node(taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]), None),
]


@pytest.mark.parametrize(("case", "candidate", "running", "target", "expected"), CASES, ids=[c[0] for c in CASES])
def test_admission(case: str, candidate: Obj, running: list[Obj], target: Obj, expected: Rejection | None) -> None:
    assert admit(candidate, target, running) == expected
