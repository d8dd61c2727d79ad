"""Server-side printing: the meta.k8s.io/v1 Table kubectl shows for `get`.

kubectl asks for `as=Table` and prints whatever columns the server sends, so
these are the columns upstream's printers produce (priority 1 columns are the
`-o wide` ones), computed the same way (pod STATUS, READY, RESTARTS, AGE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from controlplane.api.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj, dt.datetime], Any]]  # name, type, priority, cell


def human_duration(seconds: float) -> str:
    """kubectl's short duration: 45s, 3m12s, 5h10m, 2d3h, 400d."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 365 * 8 else f"{d // 365}y"


def _ts(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _age(obj: Obj, now: dt.datetime) -> str:
    created = _ts((obj.get("metadata") or {}).get("creationTimestamp"))
    return human_duration((now - created).total_seconds()) if created else "<unknown>"


def _name(obj: Obj, _now: dt.datetime) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _pod_status(pod: Obj) -> tuple[str, int, int, int, str | None]:
    """(STATUS, ready, total, restarts, last restart time) as upstream's printPod computes them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    total = len(spec.get("containers") or [])
    reason = status.get("reason") or status.get("phase") or "Unknown"
    restarts, ready = 0, 0
    last_restart: str | None = None
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and term.get("exitCode") == 0:
            continue
        if term is not None:
            detail = term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                            else f"ExitCode:{term.get('exitCode')}")
            reason = f"Init:{detail}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if last and (last_restart is None or last > last_restart):
                last_restart = last
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif "terminated" in state:
                term = state["terminated"] or {}
                reason = term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                else f"ExitCode:{term.get('exitCode')}")
            elif "running" in state and cs.get("ready"):
                has_running = True
                ready += 1
            elif "running" in state:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running" if any(c.get("type") == "Ready" and c.get("status") == "True"
                                      for c in status.get("conditions") or []) else "NotReady"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_restarts(pod: Obj, now: dt.datetime) -> str:
    *_, restarts, last = _pod_status(pod)
    last_ts = _ts(last)
    if restarts and last_ts:
        return f"{restarts} ({human_duration((now - last_ts).total_seconds())} ago)"
    return str(restarts)


def _pod_ready(pod: Obj, _now: dt.datetime) -> str:
    _, ready, total, _, _ = _pod_status(pod)
    return f"{ready}/{total}"


def _get(path: str, default: Any = "<none>") -> Callable[[Obj, dt.datetime], Any]:
    def cell(obj: Obj, _now: dt.datetime) -> Any:
        cur: Any = obj
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        return default if cur in (None, "") else cur
    return cell


def _node_status(node: Obj, _now: dt.datetime) -> str:
    ready = "Unknown"
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _node_roles(node: Obj, _now: dt.datetime) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def _node_address(kind: str) -> Callable[[Obj, dt.datetime], str]:
    def cell(node: Obj, _now: dt.datetime) -> str:
        for a in (node.get("status") or {}).get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address"))
        return "<none>"
    return cell


def _svc_external(svc: Obj, _now: dt.datetime) -> str:
    spec, status = svc.get("spec") or {}, svc.get("status") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName"))
    ips = [i.get("ip") or i.get("hostname") for i in (status.get("loadBalancer") or {}).get("ingress") or []]
    ips += spec.get("externalIPs") or []
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _svc_ports(svc: Obj, _now: dt.datetime) -> str:
    parts = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        parts.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _selector_str(selector: Any) -> str:
    if not selector:
        return "<none>"
    if "matchLabels" in selector or "matchExpressions" in selector:
        from controlplane.api.selectors import selector_to_string

        return selector_to_string(selector) or "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _containers(field: str) -> Callable[[Obj, dt.datetime], str]:
    def cell(obj: Obj, _now: dt.datetime) -> str:
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        return ",".join(str(c.get(field)) for c in spec.get("containers") or [])
    return cell


def _count(path: str) -> Callable[[Obj, dt.datetime], int]:
    def cell(obj: Obj, _now: dt.datetime) -> int:
        value = obj.get(path)
        return len(value) if isinstance(value, (dict, list)) else 0
    return cell


def _ratio(num: str, den: str) -> Callable[[Obj, dt.datetime], str]:
    def cell(obj: Obj, _now: dt.datetime) -> str:
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        return f"{status.get(num) or 0}/{spec.get(den, status.get(den, 0)) or 0}"
    return cell


def _status_int(field: str) -> Callable[[Obj, dt.datetime], int]:
    return lambda obj, _now: int((obj.get("status") or {}).get(field) or 0)


def _spec_int(field: str) -> Callable[[Obj, dt.datetime], int]:
    return lambda obj, _now: int((obj.get("spec") or {}).get(field) or 0)


def _endpoints(obj: Obj, _now: dt.datetime) -> str:
    addrs = [f"{a.get('ip')}:{p.get('port')}" for s in obj.get("subsets") or []
             for a in s.get("addresses") or [] for p in (s.get("ports") or [{}])]
    if not addrs:
        return "<none>"
    return ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")


def _slice_endpoints(obj: Obj, _now: dt.datetime) -> str:
    addrs = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    if not addrs:
        return "<unset>"
    return ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")


def _slice_ports(obj: Obj, _now: dt.datetime) -> str:
    return ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"


def _job_status(job: Obj, _now: dt.datetime) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed", "Suspended"):
            return str(cond["type"])
    return "Running"


def _job_duration(job: Obj, now: dt.datetime) -> str:
    status = job.get("status") or {}
    start = _ts(status.get("startTime"))
    if not start:
        return ""
    end = _ts(status.get("completionTime")) or now
    return human_duration((end - start).total_seconds())


def _event_object(ev: Obj, _now: dt.datetime) -> str:
    obj = ev.get("involvedObject") or {}
    return f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}"


def _event_last_seen(ev: Obj, now: dt.datetime) -> str:
    ts = _ts(ev.get("lastTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp"))
    return human_duration((now - ts).total_seconds()) if ts else "<unknown>"


NAME: Column = ("Name", "string", 0, _name)
AGE: Column = ("Age", "string", 0, _age)

COLUMNS: dict[str, list[Column]] = {
    "pods": [NAME, ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, lambda o, n: _pod_status(o)[0]),
             ("Restarts", "string", 0, _pod_restarts), AGE, ("IP", "string", 1, _get("status.podIP")),
             ("Node", "string", 1, _get("spec.nodeName")),
             ("Nominated Node", "string", 1, _get("status.nominatedNodeName")),
             ("Readiness Gates", "string", 1, lambda o, n: "<none>")],
    "nodes": [NAME, ("Status", "string", 0, _node_status), ("Roles", "string", 0, _node_roles), AGE,
              ("Version", "string", 0, _get("status.nodeInfo.kubeletVersion", "")),
              ("Internal-IP", "string", 1, _node_address("InternalIP")),
              ("External-IP", "string", 1, _node_address("ExternalIP")),
              ("OS-Image", "string", 1, _get("status.nodeInfo.osImage", "<unknown>")),
              ("Kernel-Version", "string", 1, _get("status.nodeInfo.kernelVersion", "<unknown>")),
              ("Container-Runtime", "string", 1, _get("status.nodeInfo.containerRuntimeVersion", "<unknown>"))],
    "services": [NAME, ("Type", "string", 0, _get("spec.type")),
                 ("Cluster-IP", "string", 0, _get("spec.clusterIP")),
                 ("External-IP", "string", 0, _svc_external), ("Port(s)", "string", 0, _svc_ports), AGE,
                 ("Selector", "string", 1, lambda o, n: _selector_str((o.get("spec") or {}).get("selector")))],
    "deployments": [NAME, ("Ready", "string", 0, _ratio("readyReplicas", "replicas")),
                    ("Up-to-date", "integer", 0, _status_int("updatedReplicas")),
                    ("Available", "integer", 0, _status_int("availableReplicas")), AGE,
                    ("Containers", "string", 1, _containers("name")), ("Images", "string", 1, _containers("image")),
                    ("Selector", "string", 1, lambda o, n: _selector_str((o.get("spec") or {}).get("selector")))],
    "replicasets": [NAME, ("Desired", "integer", 0, _spec_int("replicas")),
                    ("Current", "integer", 0, _status_int("replicas")),
                    ("Ready", "integer", 0, _status_int("readyReplicas")), AGE,
                    ("Containers", "string", 1, _containers("name")), ("Images", "string", 1, _containers("image")),
                    ("Selector", "string", 1, lambda o, n: _selector_str((o.get("spec") or {}).get("selector")))],
    "replicationcontrollers": [NAME, ("Desired", "integer", 0, _spec_int("replicas")),
                               ("Current", "integer", 0, _status_int("replicas")),
                               ("Ready", "integer", 0, _status_int("readyReplicas")), AGE],
    "daemonsets": [NAME, ("Desired", "integer", 0, _status_int("desiredNumberScheduled")),
                   ("Current", "integer", 0, _status_int("currentNumberScheduled")),
                   ("Ready", "integer", 0, _status_int("numberReady")),
                   ("Up-to-date", "integer", 0, _status_int("updatedNumberScheduled")),
                   ("Available", "integer", 0, _status_int("numberAvailable")),
                   ("Node Selector", "string", 0,
                    lambda o, n: _selector_str((((o.get("spec") or {}).get("template") or {}).get("spec") or {})
                                               .get("nodeSelector"))), AGE],
    "statefulsets": [NAME, ("Ready", "string", 0, _ratio("readyReplicas", "replicas")), AGE],
    "jobs": [NAME, ("Status", "string", 0, _job_status), ("Completions", "string", 0, _ratio("succeeded",
                                                                                             "completions")),
             ("Duration", "string", 0, _job_duration), AGE],
    "cronjobs": [NAME, ("Schedule", "string", 0, _get("spec.schedule")),
                 ("Timezone", "string", 0, _get("spec.timeZone")),
                 ("Suspend", "boolean", 0, lambda o, n: bool((o.get("spec") or {}).get("suspend"))),
                 ("Active", "integer", 0, lambda o, n: len((o.get("status") or {}).get("active") or [])),
                 ("Last Schedule", "string", 0, lambda o, n: (human_duration(
                     (n - t).total_seconds()) if (t := _ts((o.get("status") or {}).get("lastScheduleTime")))
                     else "<none>")), AGE],
    "namespaces": [NAME, ("Status", "string", 0, _get("status.phase", "")), AGE],
    "configmaps": [NAME, ("Data", "integer", 0, lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData")
                                                                                           or {})), AGE],
    "secrets": [NAME, ("Type", "string", 0, lambda o, n: o.get("type", "")),
                ("Data", "integer", 0, _count("data")), AGE],
    "serviceaccounts": [NAME, ("Secrets", "integer", 0, _count("secrets")), AGE],
    "endpoints": [NAME, ("Endpoints", "string", 0, _endpoints), AGE],
    "endpointslices": [NAME, ("AddressType", "string", 0, lambda o, n: o.get("addressType", "")),
                       ("Ports", "string", 0, _slice_ports), ("Endpoints", "string", 0, _slice_endpoints), AGE],
    "events": [("Last Seen", "string", 0, _event_last_seen), ("Type", "string", 0, lambda o, n: o.get("type", "")),
               ("Reason", "string", 0, lambda o, n: o.get("reason", "")), ("Object", "string", 0, _event_object),
               ("Message", "string", 0, lambda o, n: o.get("message", ""))],
    "leases": [NAME, ("Holder", "string", 0, _get("spec.holderIdentity", "")), AGE],
    "controllerrevisions": [NAME, ("Controller", "string", 0, lambda o, n: next(
        (f"{r.get('kind', '').lower()}.{r.get('apiVersion', '').split('/')[0]}/{r.get('name')}"
         for r in (o.get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), "<none>")),
        ("Revision", "integer", 0, lambda o, n: int(o.get("revision") or 0)), AGE],
}


def _cell_safe(column: Column, obj: Obj, now: dt.datetime) -> Any:
    try:
        return column[3](obj, now)
    except (KeyError, TypeError, ValueError, AttributeError):
        return "<unknown>"


def to_table(rt: ResourceType, objects: list[Obj], *, include_object: str = "Metadata",
             now: dt.datetime | None = None, list_meta: Obj | None = None) -> Obj:
    now = now or dt.datetime.now(dt.UTC)
    columns = COLUMNS.get(rt.plural, [NAME, AGE])
    rows = []
    for obj in objects:
        row: Obj = {"cells": [_cell_safe(c, obj, now) for c in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata", {})}
        rows.append(row)
    definitions = [{"name": name, "type": typ, "format": "name" if name == "Name" else "",
                    "description": f"{name} of the {rt.kind}", "priority": prio}
                   for name, typ, prio, _ in columns]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {},
            "columnDefinitions": definitions, "rows": rows}
