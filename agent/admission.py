"""Pod admission: the kubelet's own last check before it runs a pod bound to its node.

A pod can reach a node without the scheduler (`spec.nodeName` set by its author),
or the node can change after scheduling. Like upstream's predicate admit handler,
the agent then checks the pod against the node and the pods it already runs —
resources, node affinity and selector, node name, host ports, NoExecute taints —
with the scheduler's own code (`controlplane/scheduler`), and refuses a pod that
does not fit instead of starting it: phase Failed, the reason of the first failed
check (`OutOfcpu`, `OutOfmemory`, `OutOfpods`, `NodeAffinity`, ...), the message
upstream writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from controlplane.scheduler.cache import NodeInfo, PodInfo, untolerated
from controlplane.scheduler.plugins import filter_node_affinity, node_ports

Obj = dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str  # without upstream's "Pod was rejected: " prefix, which the pod status carries


def admit(pod: Obj, node: Obj, admitted: Iterable[Obj]) -> Rejection | None:
    """None if `pod` may run on `node` beside the `admitted` pods; else why not (upstream's first failure)."""
    info = NodeInfo(node, admitted)
    candidate = PodInfo(pod)
    for name, requested, used, capacity in (("pods", 1, len(info.pods), info.alloc_pods),
                                            ("cpu", candidate.cpu, info.cpu, info.alloc_cpu),
                                            ("memory", candidate.memory, info.memory, info.alloc_memory),
                                            ("ephemeral-storage", candidate.storage, info.storage,
                                             info.alloc_storage)):
        if requested and used + requested > capacity:
            return Rejection(f"OutOf{name}", f"Node didn't have enough resource: {name}, requested: {requested}, "
                                             f"used: {used}, capacity: {capacity}")
    failure = filter_node_affinity(None, candidate, info)
    if failure is not None:
        return Rejection("NodeAffinity", f"Predicate NodeAffinity failed: {failure}")
    if candidate.node_name and candidate.node_name != info.name:
        return Rejection("NodeName", "Predicate NodeName failed: node(s) didn't match the requested node name")
    failure = node_ports(None, candidate, info)
    if failure is not None:
        return Rejection("NodePorts", f"Predicate NodePorts failed: {failure}")
    no_execute = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
    if no_execute and untolerated(candidate.tolerations, no_execute) is not None:
        return Rejection("TaintToleration",
                         "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate")
    return None
