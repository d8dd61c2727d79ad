"""ServiceAccount controller: every active namespace has a `default` ServiceAccount.

Pods default to `serviceAccountName: default`, so the account must exist in
every namespace; if someone deletes it, it comes back.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller

Obj = dict[str, Any]


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.namespaces = shared.setdefault("namespaces", Informer(client, resources.NAMESPACES))
        self.accounts = shared.setdefault("serviceaccounts", Informer(client, resources.SERVICEACCOUNTS))
        self.informers = [self.namespaces, self.accounts]
        self.namespaces.add_handler(on_add=lambda ns: self.queue.add(ns["metadata"]["name"]),
                                    on_update=lambda _o, ns: self.queue.add(ns["metadata"]["name"]))
        self.accounts.add_handler(on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    async def sync(self, key: str) -> float | None:
        ns = self.namespaces.get(None, key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or self.accounts.get(key, "default"):
            return None
        try:
            await self.client.create(resources.SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": key}})
        except StatusError as exc:
            if exc.reason not in ("AlreadyExists", "Forbidden", "NotFound"):
                raise
        return None

