"""Namespace controller: a deleted namespace empties itself, then goes.

When a Namespace gets a deletionTimestamp, the API server marks it Terminating
and keeps it (its `kubernetes` finalizer). This controller deletes every
namespaced object inside it, waits until they are gone (pods may take their
grace period), and then clears the finalizer through `namespaces/<n>/finalize`,
which lets the API server remove the namespace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer, ShutDownError, WorkQueue

log = logging.getLogger(__name__)
RECHECK_SECONDS = 2.0


class NamespaceController:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.namespaces = Informer(client, resources.NAMESPACES)
        self.queue = WorkQueue("namespace")
        self.namespaces.add_handler(on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new))

    def _enqueue(self, ns: dict[str, Any]) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def sync(self, name: str) -> bool:
        """Delete the namespace's content; True when it is empty and finalized."""
        ns = self.namespaces.get(None, name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return True
        remaining = 0
        for rt in resources.RESOURCES:
            if not rt.namespaced:
                continue
            items = (await self.client.list(rt, name))["items"]
            remaining += len(items)
            for obj in items:
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(rt, obj["metadata"]["name"], name, propagation_policy="Background")
                except StatusError as exc:
                    if exc.code != 404:
                        raise
        if remaining:
            return False
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"]
        body = {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": finalizers}}
        try:
            await self.client.update(resources.NAMESPACES, body, subresource="finalize")
        except StatusError as exc:
            if exc.code != 404:
                raise
        return True

    async def run(self, stop: asyncio.Event) -> None:
        await self.namespaces.start()
        worker = asyncio.create_task(self._work())
        try:
            await stop.wait()
        finally:
            self.queue.shutdown()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await self.namespaces.stop()

    async def _work(self) -> None:
        while True:
            try:
                name = await self.queue.get()
            except ShutDownError:
                return
            try:
                if await self.sync(name):
                    self.queue.forget(name)
                else:
                    self.queue.add_after(name, RECHECK_SECONDS)
            except (StatusError, OSError) as exc:
                log.warning("namespace %s: %s", name, exc)
                self.queue.add_rate_limited(name)
            finally:
                self.queue.done(name)
