"""What every controller shares: informers to start, a work queue, workers running `sync(key)`.

A controller subclass declares its informers and writes one idempotent
`sync(key)`; this base starts the informers, waits for their caches, runs the
workers, requeues failed keys with per-key backoff and stops it all cleanly.
`sync` returns a number of seconds to look at the key again (or None).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from controlplane.api import meta
from controlplane.api.errors import StatusError
from controlplane.api.resources import ResourceType
from controlplane.client import Client, Informer, ShutDownError, WorkQueue

log = logging.getLogger(__name__)


class Controller(abc.ABC):
    name = "controller"
    workers = 1

    def __init__(self) -> None:
        self.queue = WorkQueue(self.name)
        self.informers: list[Informer] = []

    @abc.abstractmethod
    async def sync(self, key: str) -> float | None:
        """Bring one object (by key) to its desired state; seconds until a re-check, or None."""

    def enqueue_owner(self, dependent: dict[str, Any], kind: str) -> None:
        """Queue the `kind` controlling `dependent` (through its controller ownerReference)."""
        ref = meta.controller_of(dependent)
        if ref and ref.get("kind") == kind:
            self.queue.add(f"{dependent['metadata']['namespace']}/{ref['name']}")

    async def run(self, stop: asyncio.Event) -> None:
        for informer in self.informers:
            await informer.start()
        for informer in self.informers:
            await informer.wait_synced()
        workers = [asyncio.create_task(self._work(), name=f"{self.name}-{i}") for i in range(self.workers)]
        try:
            await stop.wait()
        finally:
            self.queue.shutdown()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for informer in self.informers:
                await informer.stop()

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDownError:
                return
            try:
                again = await self.sync(key)
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            except (StatusError, OSError, TimeoutError) as exc:
                log.info("%s: %s: %s; retrying", self.name, key, exc)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: sync of %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)


async def delete_if_present(client: Client, rt: ResourceType, obj: dict[str, Any], **options: Any) -> None:
    """Delete `obj`; one that is already gone is what was wanted anyway."""
    try:
        await client.delete(rt, obj["metadata"]["name"], obj["metadata"].get("namespace"), **options)
    except StatusError as exc:
        if exc.code != 404:
            raise
