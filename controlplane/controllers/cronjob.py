"""CronJob controller: create a Job at each scheduled time, within the concurrency policy.

At each sync it finds the most recent scheduled time not yet run (missed runs
collapse into the latest one, as upstream), skips it if it is older than
`startingDeadlineSeconds`, and applies `concurrencyPolicy` (Allow, Forbid:
skip while a Job runs, Replace: delete the running Jobs first). Jobs are named
`<cronjob>-<scheduled time in minutes>`, so a retried sync never creates a
second Job for the same time. Finished Jobs beyond the history limits are
deleted; the key is requeued for the next scheduled time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.client.events import EventRecorder
from controlplane.controllers import cron
from controlplane.controllers.base import Controller, delete_if_present
from controlplane.controllers.job import finished_condition

Obj = dict[str, Any]
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.cronjobs = shared.setdefault("cronjobs", Informer(client, resources.CRONJOBS))
        self.jobs = shared.setdefault("jobs", Informer(client, resources.JOBS))
        self.informers = [self.cronjobs, self.jobs]
        self.events = EventRecorder(client, "cronjob-controller")
        self.cronjobs.add_handler(on_add=lambda c: self.queue.add(meta.key_of(c)),
                                  on_update=lambda _o, c: self.queue.add(meta.key_of(c)))
        self.jobs.add_handler(on_update=lambda _o, j: self._job(j), on_delete=self._job)

    def _job(self, job: Obj) -> None:
        self.enqueue_owner(job, "CronJob")

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        cj = self.cronjobs.get(namespace, name)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return None
        spec, status = cj.get("spec") or {}, dict(cj.get("status") or {})
        try:
            schedule = cron.parse(spec.get("schedule", ""))
        except ValueError as exc:
            await self.events.emit(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {exc}")
            return None
        uid = cj["metadata"]["uid"]
        owned = [j for j in self.jobs.list(namespace) if (meta.controller_of(j) or {}).get("uid") == uid]
        active = [j for j in owned if not finished_condition(j)]
        now = dt.datetime.now(dt.UTC)
        since = meta.parse_time(status.get("lastScheduleTime") or cj["metadata"]["creationTimestamp"])
        due = None
        nxt = schedule.next_after(since)
        while nxt <= now:
            due, nxt = nxt, schedule.next_after(nxt)
        if due is not None and not spec.get("suspend"):
            deadline = spec.get("startingDeadlineSeconds")
            if deadline is not None and (now - due).total_seconds() > float(deadline):
                await self.events.emit(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: "
                                       f"{due.strftime('%Y-%m-%dT%H:%M:%SZ')}")
            else:
                active = await self._run(cj, due, active)
            status["lastScheduleTime"] = due.strftime("%Y-%m-%dT%H:%M:%SZ")
        status["active"] = [{"kind": "Job", "apiVersion": "batch/v1", "name": j["metadata"]["name"],
                             "namespace": namespace, "uid": j["metadata"]["uid"]} for j in active] or None
        successes = sorted((j for j in owned if finished_condition(j) == "Complete"),
                           key=lambda j: (j.get("status") or {}).get("completionTime") or "")
        if successes:
            status["lastSuccessfulTime"] = (successes[-1].get("status") or {}).get("completionTime")
        status = {k: v for k, v in status.items() if v is not None}
        if status != (cj.get("status") or {}):
            await self.client.update(resources.CRONJOBS, {**cj, "status": status}, subresource="status")
        await self._prune(owned, spec)
        return max((nxt - now).total_seconds(), 1.0)

    async def _run(self, cj: Obj, due: dt.datetime, active: list[Obj]) -> list[Obj]:
        policy = (cj.get("spec") or {}).get("concurrencyPolicy", "Allow")
        if active and policy == "Forbid":
            return active
        if active and policy == "Replace":
            for job in active:
                await self._delete(job)
            active = []
        md = cj["metadata"]
        template = (cj.get("spec") or {}).get("jobTemplate") or {}
        stamp = due.strftime("%Y-%m-%dT%H:%M:%SZ")
        job = {"metadata": {"name": f"{md['name']}-{int(due.timestamp()) // 60}", "namespace": md["namespace"],
                            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                            "annotations": {**((template.get("metadata") or {}).get("annotations") or {}),
                                            SCHEDULED: stamp},
                            "ownerReferences": [meta.owner_reference(cj)]},
               "spec": dict(template.get("spec") or {})}
        try:
            created = await self.client.create(resources.JOBS, job)
        except StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
            return active  # made by an earlier attempt of this very sync
        await self.events.emit(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        return [*active, created]

    async def _prune(self, owned: list[Obj], spec: Obj) -> None:
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                            ("Failed", spec.get("failedJobsHistoryLimit", 1))):
            done = sorted((j for j in owned if finished_condition(j) == kind),
                          key=lambda j: j["metadata"].get("creationTimestamp") or "")
            for job in done[: max(len(done) - int(limit), 0)]:
                await self._delete(job)

    async def _delete(self, job: Obj) -> None:
        await delete_if_present(self.client, resources.JOBS, job, propagation_policy="Background")
