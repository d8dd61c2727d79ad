"""Which fields each resource can be selected by (`fieldSelector=`), and their values.

The sets are upstream's: every kind supports metadata.name and
metadata.namespace; a few kinds add their own (pods by node and phase, events
by involved object, secrets by type, ...). Anything else is a 400 BadRequest.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import ResourceType


def _get(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


_EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "events"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                     "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
}


# Go bools: a field left out is false, and selects as "false" (upstream formats the struct field).
_BOOLEANS = ("spec.unschedulable", "spec.hostNetwork")


def allowed_fields(rt: ResourceType) -> set[str]:
    return {"metadata.name", "metadata.namespace", *_EXTRA.get((rt.group, rt.plural), ())}


def field_set(rt: ResourceType, obj: dict[str, Any]) -> dict[str, str]:
    values = {name: _get(obj, name) for name in allowed_fields(rt)}
    for name in _BOOLEANS:
        if values.get(name) == "":
            values[name] = "false"
    if rt.plural == "events":
        values["source"] = _get(obj, "source.component") or _get(obj, "reportingComponent")
    if rt.plural == "jobs":
        values["status.successful"] = _get(obj, "status.succeeded") or "0"
    return values
