"""Root CA publisher: every namespace holds the `kube-root-ca.crt` ConfigMap.

Programs in pods verify the API server with it (the projected service-account
volume mounts its `ca.crt`), and upstream's e2e framework waits for it in every
namespace it creates. As upstream's root-ca-cert-publisher: the ConfigMap is
created in each active namespace, and put back when it is deleted or its data
or description changed.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller

Obj = dict[str, Any]
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCAPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, client: Client, shared: dict[str, Informer], root_ca: bytes) -> None:
        super().__init__()
        self.client = client
        self.data = {"ca.crt": root_ca.decode()}
        self.namespaces = shared.setdefault("namespaces", Informer(client, resources.NAMESPACES))
        # Only the one ConfigMap per namespace is watched, not every ConfigMap of the cluster.
        self.configmaps = Informer(client, resources.CONFIGMAPS, field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.informers = [self.namespaces, self.configmaps]
        self.namespaces.add_handler(on_add=lambda ns: self.queue.add(ns["metadata"]["name"]),
                                    on_update=lambda _o, ns: self.queue.add(ns["metadata"]["name"]))
        self.configmaps.add_handler(on_update=lambda _o, cm: self.queue.add(cm["metadata"]["namespace"]),
                                    on_delete=lambda cm: self.queue.add(cm["metadata"]["namespace"]))

    def _wanted(self, current: Obj) -> bool:
        annotations = current["metadata"].get("annotations") or {}
        return current.get("data") == self.data and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION

    async def sync(self, key: str) -> float | None:
        ns = self.namespaces.get(None, key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or (ns.get("status") or {}).get(
                "phase") == "Terminating":
            return None
        current = self.configmaps.get(key, ROOT_CA_CONFIGMAP)
        try:
            if current is None:
                await self.client.create(resources.CONFIGMAPS, {
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": key,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": self.data}, key)
            elif not self._wanted(current):
                updated = {k: v for k, v in current.items() if k != "binaryData"}
                updated["data"] = self.data
                updated["metadata"] = {**current["metadata"], "annotations": {
                    **(current["metadata"].get("annotations") or {}), DESCRIPTION_ANNOTATION: DESCRIPTION}}
                await self.client.update(resources.CONFIGMAPS, updated)
        except StatusError as exc:
            # AlreadyExists/Conflict: the informer is behind, its event requeues; the namespace may be going.
            if exc.reason not in ("AlreadyExists", "Conflict", "Forbidden", "NotFound"):
                raise
        return None
