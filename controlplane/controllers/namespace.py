"""Namespace controller: a deleted namespace empties itself, then goes.

When a Namespace gets a deletionTimestamp, the API server marks it Terminating
and keeps it (its `kubernetes` finalizer). This controller deletes every
namespaced object inside it, waits until they are gone (pods may take their
grace period), and then clears the finalizer through `namespaces/<n>/finalize`,
which lets the API server remove the namespace.
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller

log = logging.getLogger(__name__)
RECHECK_SECONDS = 2.0


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self.namespaces = Informer(client, resources.NAMESPACES)
        self.informers = [self.namespaces]
        self.namespaces.add_handler(on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new))

    def _enqueue(self, ns: dict[str, Any]) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def sync(self, key: str) -> float | None:
        """Delete the namespace's content; once it is empty, finalize the namespace."""
        name = key
        ns = self.namespaces.get(None, name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        remaining = 0
        for rt in resources.RESOURCES:
            if not rt.namespaced or not rt.stored:
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
            return RECHECK_SECONDS  # pods may be waiting out their grace period
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"]
        body = {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": finalizers}}
        try:
            await self.client.update(resources.NAMESPACES, body, subresource="finalize")
        except StatusError as exc:
            if exc.code != 404:
                raise
        return None
