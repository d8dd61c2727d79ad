"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.

Candidates race to write their identity into the Lease with optimistic
concurrency (resourceVersion); the holder renews `renewTime` every
`retry_period` and steps down if it cannot renew within `renew_deadline`;
others take over only after `lease_duration` without a renewal. So two
controller managers (or schedulers) never act at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client.rest import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class LeaderElector:
    def __init__(self, client: Client, namespace: str, name: str, identity: str, *, lease_duration: float = 15.0,
                 renew_deadline: float = 10.0, retry_period: float = 2.0) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False

    def _spec(self, lease: Obj | None, now: str) -> Obj:
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
            spec["acquireTime"] = now
        spec.update({"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                     "renewTime": now})
        return spec

    def _expired(self, lease: Obj) -> bool:
        spec = lease.get("spec") or {}
        renew = spec.get("renewTime")
        if not spec.get("holderIdentity") or not renew:
            return True
        age = (dt.datetime.now(dt.UTC) - meta.parse_time(renew)).total_seconds()
        return age > float(spec.get("leaseDurationSeconds") or self.lease_duration)

    async def try_acquire_or_renew(self) -> bool:
        now = meta.now_micro()
        try:
            lease = await self.client.get(resources.LEASES, self.name, self.namespace)
        except StatusError as exc:
            if exc.code != 404:
                raise
            try:
                await self.client.create(resources.LEASES, {"metadata": {"name": self.name, "namespace":
                                                                         self.namespace}, "spec": self._spec(None, now)})
                return True
            except StatusError as create_exc:
                if create_exc.reason == "AlreadyExists":
                    return False
                raise
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if holder != self.identity and not self._expired(lease):
            return False
        try:
            await self.client.update(resources.LEASES, {**lease, "spec": self._spec(lease, now)})
            return True
        except StatusError as exc:
            if exc.reason == "Conflict":
                return False  # someone else wrote first
            raise

    async def run(self, on_started_leading: Callable[[], Coroutine[Any, Any, None]],
                  on_stopped_leading: Callable[[], None] | None = None) -> None:
        """Campaign until leading, run `on_started_leading` while renewing; return when leadership is lost."""
        while not await self._attempt():
            await asyncio.sleep(self.retry_period)
        self.is_leader = True
        log.info("%s became leader of %s/%s", self.identity, self.namespace, self.name)
        work: asyncio.Task[None] = asyncio.create_task(on_started_leading())
        try:
            await self._renew_until_lost(work)
        finally:
            self.is_leader = False
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            if on_stopped_leading is not None:
                on_stopped_leading()

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (StatusError, OSError, TimeoutError) as exc:
            log.info("leader election for %s: %s", self.name, exc)
            return False

    async def _renew_until_lost(self, work: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        last_renew = loop.time()
        while not work.done():
            await asyncio.sleep(self.retry_period)
            if await self._attempt():
                last_renew = loop.time()
            elif loop.time() - last_renew > self.renew_deadline:
                log.warning("%s lost the lease %s/%s", self.identity, self.namespace, self.name)
                return
