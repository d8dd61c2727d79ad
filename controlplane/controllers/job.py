"""Job controller: run pods to completion, within parallelism, retries and deadlines.

A Job keeps up to `parallelism` pods running until `completions` of them have
succeeded (or, without completions, until one has and the rest are done). A
pod failure counts against `backoffLimit`; past it, or past
`activeDeadlineSeconds`, the Job fails (conditions Failed with reason
BackoffLimitExceeded or DeadlineExceeded) and its running pods are deleted.
A finished Job with `ttlSecondsAfterFinished` is deleted when that runs out.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from controlplane.api import meta, resources
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers import stored
from controlplane.controllers.base import Controller, delete_if_present
from controlplane.controllers.replicaset import Expectations

Obj = dict[str, Any]


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def finished_condition(job: Obj) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


class JobController(Controller):
    name = "job"
    workers = 2

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.jobs = shared.setdefault("jobs", Informer(client, resources.JOBS))
        self.pods = shared.setdefault("pods", Informer(client, resources.PODS))
        self.informers = [self.jobs, self.pods]
        self.expectations = Expectations()
        self.events = EventRecorder(client, "job-controller")
        self.jobs.add_handler(on_add=lambda j: self.queue.add(meta.key_of(j)),
                              on_update=lambda _o, j: self.queue.add(meta.key_of(j)))
        self.pods.add_handler(on_add=self._pod, on_update=lambda _o, p: self._pod(p), on_delete=self._pod)

    def _pod(self, pod: Obj) -> None:
        self.enqueue_owner(pod, "Job")

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        job = self.jobs.get(namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        spec, status = job.get("spec") or {}, dict(job.get("status") or {})
        if stored.refuse(job, spec, {"parallelism": stored.INT32, "completions": stored.INT32,
                                     "backoffLimit": stored.INT32, "activeDeadlineSeconds": stored.INT64}):
            return None
        uid = job["metadata"]["uid"]
        pods = [p for p in self.pods.list(namespace) if (meta.controller_of(p) or {}).get("uid") == uid]
        now = dt.datetime.now(dt.UTC)
        finished = finished_condition(job)
        if finished:
            return await self._ttl(job, now)
        if spec.get("suspend"):
            return None
        succeeded = sum(1 for p in pods if _phase(p) == "Succeeded")
        failed = sum(1 for p in pods if _phase(p) == "Failed")
        active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and
                  not p["metadata"].get("deletionTimestamp")]
        status.setdefault("startTime", meta.now_rfc3339())
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        failure = None
        if failed > int(spec.get("backoffLimit", 6)):
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        elapsed = (now - meta.parse_time(status["startTime"])).total_seconds()
        if deadline is not None and elapsed >= float(deadline):
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        complete = (succeeded >= int(completions)) if completions is not None else (succeeded > 0 and not active)
        if failure:
            for pod in active:
                await self._delete_pod(pod)
            active = []
            status["conditions"] = [self._condition("Failed", *failure)]
            await self.events.emit(job, "Warning", failure[0], failure[1])
        elif complete:
            status["conditions"] = [self._condition("Complete", "", "")]
            status["completionTime"] = meta.now_rfc3339()
            await self.events.emit(job, "Normal", "Completed", "Job completed")
        else:
            seen = {p["metadata"]["name"] for p in active}
            self.expectations.prune(key, seen)
            pending = len(self.expectations.adds.get(key, {}))
            want = parallelism if completions is None else min(parallelism, int(completions) - succeeded)
            if succeeded and completions is None:
                want = 0  # a work-queue Job starts nothing new once one pod succeeded
            for _ in range(max(want - len(active) - pending, 0)):
                await self._create_pod(job, key)
        status.update({"active": len(active), "succeeded": succeeded, "failed": failed,
                       "ready": sum(1 for p in active if meta.is_pod_ready(p))})
        if status != job.get("status"):
            await self.client.update(resources.JOBS, {**job, "status": status}, subresource="status")
        if deadline is not None and not failure and not complete:
            return max(float(deadline) - elapsed, 0.5)
        return None

    @staticmethod
    def _condition(kind: str, reason: str, message: str) -> Obj:
        now = meta.now_rfc3339()
        cond: Obj = {"type": kind, "status": "True", "lastProbeTime": now, "lastTransitionTime": now}
        if reason:
            cond.update({"reason": reason, "message": message})
        return cond

    async def _create_pod(self, job: Obj, key: str) -> None:
        template = (job.get("spec") or {}).get("template") or {}
        md = job["metadata"]
        labels = {**((template.get("metadata") or {}).get("labels") or {}), "controller-uid": md["uid"],
                  "job-name": md["name"], "batch.kubernetes.io/controller-uid": md["uid"],
                  "batch.kubernetes.io/job-name": md["name"]}
        pod = {"metadata": {"generateName": f"{md['name']}-", "namespace": md["namespace"], "labels": labels,
                            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                            "ownerReferences": [meta.owner_reference(job)]},
               "spec": dict(template.get("spec") or {})}
        created = await self.client.create(resources.PODS, pod)
        self.expectations.adds.setdefault(key, {})[created["metadata"]["name"]] = time.monotonic()
        await self.events.emit(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    async def _delete_pod(self, pod: Obj) -> None:
        await delete_if_present(self.client, resources.PODS, pod)

    async def _ttl(self, job: Obj, now: dt.datetime) -> float | None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        status = job.get("status") or {}
        finished_at = status.get("completionTime") or next(
            (c.get("lastTransitionTime") for c in status.get("conditions") or [] if c.get("status") == "True"), None)
        if not finished_at:
            return None
        remaining = float(ttl) - (now - meta.parse_time(finished_at)).total_seconds()
        if remaining > 0:
            return remaining
        await delete_if_present(self.client, resources.JOBS, job, propagation_policy="Background")
        return None
