"""A pod's API status computed from the runtime snapshot, as an upstream kubelet reports it.

Phase, conditions and container states follow upstream's rules so that
`kubectl get pods` shows the same READY, STATUS and RESTARTS columns: a
container that waits shows its reason (ContainerCreating, PodInitializing,
ErrImagePull, CrashLoopBackOff, CreateContainerConfigError ...), a finished one
its exit code and reason, and `lastState` keeps the previous instance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from agent.containerspec import qos_class
from agent.probes import ContainerProbes
from agent.runtime import EXITED, RUNNING, Container, PodRuntime

Obj = dict[str, Any]


@dataclass
class Waiting:
    reason: str
    message: str = ""


@dataclass
class PodView:
    """What the worker knows beyond the runtime: why containers wait, and their probes."""

    waiting: dict[str, Waiting] = field(default_factory=dict)
    probes: dict[str, ContainerProbes] = field(default_factory=dict)
    failed_init: bool = False


def rfc3339_ns(ns: int) -> str | None:
    if ns <= 0:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminated_reason(c: Container) -> str:
    if c.reason:
        return c.reason
    return "Completed" if c.exit_code == 0 else "Error"


def _terminated(c: Container, message: str = "") -> Obj:
    out: Obj = {"exitCode": c.exit_code, "reason": terminated_reason(c), "startedAt": rfc3339_ns(c.started_at),
                "finishedAt": rfc3339_ns(c.finished_at), "containerID": f"containerd://{c.id}"}
    if message or c.message:
        out["message"] = message or c.message
    return out


def container_status(spec: Obj, history: list[Container], view: PodView, *, init: bool,
                     termination_messages: dict[str, str], default_reason: str = "ContainerCreating") -> Obj:
    name = spec["name"]
    latest = history[0] if history else None
    status: Obj = {"name": name, "image": spec.get("image", ""), "imageID": "", "ready": False,
                   "restartCount": latest.restart_count if latest else 0, "started": False}
    waiting = view.waiting.get(name)
    if latest is not None:
        status["imageID"] = latest.image_ref
        status["containerID"] = f"containerd://{latest.id}"
    previous = history[1] if len(history) > 1 else None
    if latest is not None and latest.state == EXITED and waiting is not None:
        # waiting to be restarted: the finished instance becomes lastState
        previous = latest
        latest = None
    if latest is not None and latest.state == RUNNING:
        probes = view.probes.get(name)
        status["state"] = {"running": {"startedAt": rfc3339_ns(latest.started_at)}}
        if probes is not None and probes.container_id == latest.id:
            status["started"], ready = probes.is_started, probes.ready
        else:  # probes not yet running for this instance: only a container without them counts as such
            status["started"] = not spec.get("startupProbe")
            ready = not spec.get("startupProbe") and not spec.get("readinessProbe")
        status["ready"] = ready and not init
    elif latest is not None and latest.state == EXITED:
        status["state"] = {"terminated": _terminated(latest, termination_messages.get(latest.id, ""))}
    else:
        reason = waiting.reason if waiting else default_reason
        state: Obj = {"reason": reason}
        if waiting and waiting.message:
            state["message"] = waiting.message
        status["state"] = {"waiting": state}
    if previous is not None and previous.state == EXITED:
        status["lastState"] = {"terminated": _terminated(previous, termination_messages.get(previous.id, ""))}
    else:
        status["lastState"] = {}
    return status


def pod_phase(pod: Obj, inits: list[Obj], containers: list[Obj], initialized: bool, failed_init: bool) -> str:
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    if failed_init:
        return "Failed"
    if not initialized:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for status in containers:
        state = status.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif status.get("lastState", {}).get("terminated"):
            stopped += 1
            if status["lastState"]["terminated"].get("exitCode") == 0:
                succeeded += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if policy == "OnFailure" else "Failed"
    return "Pending"


def _condition(previous: list[Obj], ctype: str, value: bool, reason: str = "", message: str = "") -> Obj:
    status = "True" if value else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    when = old.get("lastTransitionTime") if old and old.get("status") == status else now()
    out: Obj = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def compute(pod: Obj, runtime: PodRuntime, view: PodView, *, node_ip: str,
            termination_messages: dict[str, str]) -> Obj:
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    sandbox = runtime.sandbox
    inits = [container_status(c, runtime.history(c["name"]), view, init=True,
                              termination_messages=termination_messages)
             for c in spec.get("initContainers") or []]
    initialized = all((s.get("state") or {}).get("terminated", {}).get("exitCode") == 0 for s in inits)
    default_reason = "PodInitializing" if not initialized and sandbox is not None else "ContainerCreating"
    containers = [container_status(c, runtime.history(c["name"]), view, init=False,
                                   termination_messages=termination_messages, default_reason=default_reason)
                  for c in spec.get("containers") or []]
    phase = pod_phase(pod, inits, containers, initialized, view.failed_init)
    terminal = phase in ("Succeeded", "Failed")
    previous = old.get("conditions") or []
    not_ready = [s["name"] for s in containers if not s["ready"]]
    incomplete = [s["name"] for s in inits if (s.get("state") or {}).get("terminated", {}).get("exitCode") != 0]
    conditions = [
        _condition(previous, "PodReadyToStartContainers", sandbox is not None and sandbox.ready),
        _condition(previous, "Initialized", initialized or (terminal and not incomplete),
                   "" if initialized else "ContainersNotInitialized",
                   "" if initialized else f"containers with incomplete status: [{' '.join(incomplete)}]"),
    ]
    ready = not not_ready and not terminal
    ready_reason = "PodCompleted" if terminal else ("" if ready else "ContainersNotReady")
    ready_message = "" if ready or terminal else f"containers with unready status: [{' '.join(not_ready)}]"
    conditions.append(_condition(previous, "ContainersReady", ready, ready_reason, ready_message))
    conditions.append(_condition(previous, "Ready", ready, ready_reason, ready_message))
    scheduled = next((c for c in previous if c.get("type") == "PodScheduled"), None)
    conditions.append(scheduled or _condition(previous, "PodScheduled", True))
    status: Obj = {
        "phase": phase, "conditions": conditions, "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "startTime": old.get("startTime") or now(), "qosClass": qos_class(pod),
        "containerStatuses": containers,
    }
    if inits:
        status["initContainerStatuses"] = inits
    pod_ip = node_ip if spec.get("hostNetwork") else (sandbox.ip if sandbox is not None and sandbox.ready else "")
    if not pod_ip and terminal:
        pod_ip = old.get("podIP", "")
    if pod_ip:
        status["podIP"] = pod_ip
        extra = [] if spec.get("hostNetwork") or sandbox is None else sandbox.additional_ips
        status["podIPs"] = [{"ip": pod_ip}] + [{"ip": ip} for ip in extra]
    return status

