"""Garbage collector: dependents follow their owners through ownerReferences.

- background: a dependent whose every owner is gone is deleted;
- orphan: an owner being deleted with the `orphan` finalizer first has its
  references removed from its dependents, then loses the finalizer;
- foreground: an owner with the `foregroundDeletion` finalizer has its
  dependents deleted first, and loses the finalizer when none is left.

The graph covers the kinds that own things in this cluster (Deployments,
ReplicaSets, ReplicationControllers, DaemonSets, StatefulSets, Jobs, CronJobs)
and their dependents (those kinds, Pods and ControllerRevisions). Owners are
confirmed absent with a live GET before anything is deleted, because an
informer may lag behind.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.api.resources import ResourceType, by_kind
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller

Obj = dict[str, Any]
OWNER_KINDS = (resources.DEPLOYMENTS, resources.REPLICASETS, resources.REPLICATIONCONTROLLERS,
               resources.DAEMONSETS, resources.STATEFULSETS, resources.JOBS, resources.CRONJOBS)
DEPENDENT_KINDS = (resources.PODS, resources.CONTROLLERREVISIONS, *OWNER_KINDS)


def _key(rt: ResourceType, obj: Obj) -> str:
    return f"{rt.plural}|{meta.key_of(obj)}"


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 2

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.by_plural: dict[str, tuple[ResourceType, Informer]] = {}
        for rt in DEPENDENT_KINDS:
            informer = shared.get(rt.plural) or Informer(client, rt)
            shared[rt.plural] = informer
            self.by_plural[rt.plural] = (rt, informer)
            informer.add_index("owner-uid", lambda o: [r["uid"] for r in o["metadata"].get("ownerReferences") or []])
            informer.add_handler(on_add=self._changed(rt), on_update=lambda _o, n, rt=rt: self._changed(rt)(n),
                                 on_delete=self._deleted(rt))
        self.informers = [i for _, i in self.by_plural.values()]

    def _changed(self, rt: ResourceType) -> Any:
        def handler(obj: Obj) -> None:
            md = obj["metadata"]
            if md.get("ownerReferences") or {"orphan", "foregroundDeletion"} & set(md.get("finalizers") or []):
                self.queue.add(_key(rt, obj))
        return handler

    def _deleted(self, rt: ResourceType) -> Any:
        def handler(obj: Obj) -> None:
            for dep_rt, dependent in self._dependents(obj["metadata"]["uid"]):
                self.queue.add(_key(dep_rt, dependent))
        return handler

    def _dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        return [(rt, obj) for rt, informer in self.by_plural.values() for obj in informer.by_index("owner-uid", uid)]

    async def sync(self, key: str) -> float | None:
        plural, name_key = key.split("|", 1)
        rt, informer = self.by_plural[plural]
        obj = informer.get_by_key(name_key)
        if obj is None:
            return None
        md = obj["metadata"]
        finalizers = set(md.get("finalizers") or [])
        if md.get("deletionTimestamp") and "orphan" in finalizers:
            await self._orphan(rt, obj)
        elif md.get("deletionTimestamp") and "foregroundDeletion" in finalizers:
            return await self._foreground(rt, obj)
        refs = md.get("ownerReferences") or []
        if refs and not md.get("deletionTimestamp") and not [r for r in refs if await self._owner_exists(obj, r)]:
            await self._delete(rt, obj, "Background")
        return None

    async def _owner_exists(self, dependent: Obj, ref: Obj) -> bool:
        owner_rt = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if owner_rt is None:
            return True  # a kind this server does not know: never delete on its account
        namespace = dependent["metadata"].get("namespace") if owner_rt.namespaced else None
        try:
            owner = await self.client.get(owner_rt, ref["name"], namespace)
        except StatusError as exc:
            if exc.code == 404:
                return False
            raise
        return bool(owner["metadata"].get("uid") == ref.get("uid"))

    async def _delete(self, rt: ResourceType, obj: Obj, policy: str) -> None:
        md = obj["metadata"]
        try:
            await self.client.delete(rt, md["name"], md.get("namespace"), propagation_policy=policy,
                                     preconditions={"uid": md["uid"]})
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _remove_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        md = obj["metadata"]
        remaining = [f for f in md.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": md["resourceVersion"]}}
        await self.client.patch(rt, md["name"], patch, md.get("namespace"))

    async def _orphan(self, rt: ResourceType, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for dep_rt, dependent in self._dependents(uid):
            refs = [r for r in dependent["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            patch = {"metadata": {"ownerReferences": refs or None}}
            try:
                await self.client.patch(dep_rt, dependent["metadata"]["name"], patch,
                                        dependent["metadata"].get("namespace"))
            except StatusError as exc:
                if exc.code != 404:
                    raise
        await self._remove_finalizer(rt, owner, "orphan")

    async def _foreground(self, rt: ResourceType, owner: Obj) -> float | None:
        dependents = self._dependents(owner["metadata"]["uid"])
        for dep_rt, dependent in dependents:
            if not dependent["metadata"].get("deletionTimestamp"):
                await self._delete(dep_rt, dependent, "Foreground")
        if dependents:
            return 1.0  # look again until they are gone
        await self._remove_finalizer(rt, owner, "foregroundDeletion")
        return None
