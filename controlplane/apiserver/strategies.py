"""What differs between kinds when an object is created, updated or deleted.

Upstream calls these REST strategies: status resets on create, the split
between the main resource and its `status` subresource, `metadata.generation`
bumps on spec changes, graceful deletion of pods, finalizers and propagation
policies, namespace termination, and Service address allocation.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any

from controlplane.api import errors, schema
from controlplane.api.resources import DAEMONSETS, NAMESPACES, PODS, SECRETS, SERVICES, ResourceType
from controlplane.apiserver.allocators import ServiceAllocator
from controlplane.storage.interface import KeyNotFoundError, Store

log = logging.getLogger(__name__)
Obj = dict[str, Any]
# apps/v1 keeps a DaemonSet's template generation (its pods' `pod-template-generation`) here.
DAEMONSET_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

# Kinds whose `status` is written only through the status subresource.
def _has_status_subresource(rt: ResourceType) -> bool:
    return "status" in rt.subresources


def _generation_tracked(rt: ResourceType) -> bool:
    return rt.kind not in ("Namespace", "Node", "Event", "Lease", "Endpoints", "EndpointSlice",
                           "ConfigMap", "Secret", "ServiceAccount", "ControllerRevision")


def _spec_of(obj: Obj) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Strategies:
    def __init__(self, store: Store, allocator: ServiceAllocator) -> None:
        self.store = store
        self.allocator = allocator

    # -- create ------------------------------------------------------------------

    async def prepare_create(self, rt: ResourceType, obj: Obj) -> None:
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        md = obj["metadata"]
        if _generation_tracked(rt):
            md["generation"] = 1
        if rt is PODS:
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
        elif rt is NAMESPACES:
            obj["status"] = {"phase": "Active"}
        elif _has_status_subresource(rt) and rt.kind not in ("Node", "Service"):
            obj["status"] = {}
        if rt is SECRETS:
            _merge_string_data(obj)
        schema.apply_defaults(rt, obj)
        if rt is DAEMONSETS:
            md.setdefault("annotations", {})[DAEMONSET_TEMPLATE_GENERATION] = "1"
        if rt.namespaced:
            await self._check_namespace(md.get("namespace") or "")

    async def _check_namespace(self, namespace: str) -> None:
        try:
            kv = await self.store.get(NAMESPACES.storage_key(None, namespace))
        except KeyNotFoundError:
            raise errors.not_found("namespaces", namespace) from None
        import orjson

        ns = orjson.loads(kv.value)
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(f'unable to create new content in namespace {namespace} because it is being '
                                   "terminated")

    async def before_store_create(self, rt: ResourceType, obj: Obj, *, dry_run: bool = False) -> None:
        if rt is SERVICES:
            await self.allocator.allocate(obj, dry_run=dry_run)

    async def after_write(self, rt: ResourceType, before: Obj, after: Obj | None) -> None:
        """`before` was replaced by `after` in the store (None: removed)."""
        if rt is SERVICES:
            await self._release(before, after)

    async def after_failed_write(self, rt: ResourceType, attempted: Obj, stored: Obj | None) -> None:
        """`attempted` was not written (refused or failed); `stored` is what the store still holds
        (None: nothing)."""
        if rt is SERVICES:
            await self._release(attempted, stored)

    async def _release(self, svc: Obj, keep: Obj | None) -> None:
        try:
            await self.allocator.release(svc, keep)
        except Exception:  # the write itself is decided; a claim left behind goes stale and is taken over
            log.warning("could not release the address claims of Service %s", svc.get("metadata", {}).get("name"),
                        exc_info=True)

    async def validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        causes = schema.validate(rt, obj, old)
        if causes:
            raise errors.invalid(rt.kind, str((obj.get("metadata") or {}).get("name") or ""), causes, rt.group)

    # -- update ------------------------------------------------------------------

    async def prepare_update(self, rt: ResourceType, new: Obj, old: Obj, subresource: str | None, *,
                             dry_run: bool = False) -> Obj:
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        md = new.setdefault("metadata", {})
        old_md = old["metadata"]
        # Identity and server-owned metadata never change through an update.
        for field in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
            if field in old_md:
                md[field] = old_md[field]
            else:
                md.pop(field, None)
        if subresource == "binding":
            return new  # the binding sets spec.nodeName and the PodScheduled condition together
        if subresource == "status":
            merged = {**old, "status": new.get("status", old.get("status"))}
            merged["metadata"] = {**old_md, "resourceVersion": md.get("resourceVersion")}
            return merged
        if _has_status_subresource(rt) and rt is not NAMESPACES:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if rt is NAMESPACES:
            new["status"] = old.get("status", {})
            if subresource != "finalize":
                new.setdefault("spec", {})["finalizers"] = (old.get("spec") or {}).get("finalizers", [])
        if rt is SECRETS:
            _merge_string_data(new)
        schema.apply_defaults(rt, new)
        if rt is SERVICES and _addressing(new) != _addressing(old):
            # A new type or port gets (and is checked for) its addresses.
            await self.allocator.allocate(new, old, dry_run=dry_run)
        if _generation_tracked(rt) and _spec_of(new) != _spec_of(old):
            md["generation"] = int(old_md.get("generation", 1)) + 1
        if rt is DAEMONSETS:
            _keep_template_generation(new, old)
        return new

    def ready_to_remove(self, rt: ResourceType, obj: Obj) -> bool:
        """A terminating object nothing holds any more: no finalizer, no pending graceful deletion."""
        md = obj["metadata"]
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        if rt is NAMESPACES and (obj.get("spec") or {}).get("finalizers"):
            return False
        # A bound pod stays until its kubelet confirms termination (a delete with grace 0).
        return not (rt is PODS and (obj.get("spec") or {}).get("nodeName")
                    and int(md.get("deletionGracePeriodSeconds") or 0) > 0)

    # -- delete ------------------------------------------------------------------

    async def prepare_delete(self, rt: ResourceType, obj: Obj, options: Obj) -> Obj | None:
        """The object to store instead of deleting (terminating), or None to remove it now."""
        md = obj["metadata"]
        finalizers = list(md.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        elif policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        now = dt.datetime.now(dt.UTC)
        if rt is NAMESPACES:
            if (obj.get("spec") or {}).get("finalizers"):
                md.setdefault("deletionTimestamp", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
                md.setdefault("deletionGracePeriodSeconds", 0)
                obj.setdefault("status", {})["phase"] = "Terminating"
                md["finalizers"] = finalizers or md.get("finalizers") or []
                if not md["finalizers"]:
                    md.pop("finalizers")
                return obj
        if rt is PODS:
            grace = options.get("gracePeriodSeconds")
            if grace is None:
                grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = max(int(grace), 0)
            unscheduled = not (obj.get("spec") or {}).get("nodeName")
            terminal = (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            if unscheduled or terminal:
                grace = 0
            current = md.get("deletionGracePeriodSeconds")
            if grace > 0 and (current is None or grace < int(current)):
                md["deletionTimestamp"] = (now + dt.timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")
                md["deletionGracePeriodSeconds"] = grace
                if finalizers:
                    md["finalizers"] = finalizers
                return obj
            if grace > 0:
                return obj  # already terminating with a shorter grace period
            if finalizers:
                md["deletionTimestamp"] = md.get("deletionTimestamp") or now.strftime("%Y-%m-%dT%H:%M:%SZ")
                md["deletionGracePeriodSeconds"] = 0
                md["finalizers"] = finalizers
                return obj
            return None
        if finalizers:
            md.setdefault("deletionTimestamp", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
            md.setdefault("deletionGracePeriodSeconds", 0)
            md["finalizers"] = finalizers
            return obj
        return None


def _merge_string_data(secret: Obj) -> None:
    """Upstream's Secret conversion: `stringData` is write-only, merged into `data` (its keys win), never stored."""
    strings = secret.pop("stringData", None)
    if not isinstance(strings, dict) or not strings:
        return
    data = secret.get("data")
    if not isinstance(data, dict):
        data = secret["data"] = {}
    for key, value in strings.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _addressing(svc: Obj) -> tuple[Any, ...]:
    """What of a Service's spec its address allocation depends on."""
    spec = svc.get("spec") or {}
    return spec.get("type"), spec.get("clusterIP"), spec.get("clusterIPs"), spec.get("ports")


def _keep_template_generation(new: Obj, old: Obj) -> None:
    """The annotation is server-owned: kept on every update, bumped when the pod template changes."""
    old_value = ((old["metadata"].get("annotations") or {}).get(DAEMONSET_TEMPLATE_GENERATION)) or "1"
    generation = int(old_value) if old_value.isdigit() else 1
    if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
        generation += 1
    new["metadata"].setdefault("annotations", {})[DAEMONSET_TEMPLATE_GENERATION] = str(generation)


def _qos_class(spec: Obj) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests_any = limits_all = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for name in ("cpu", "memory"):
            if name not in lim or (name in req and req[name] != lim[name]):
                guaranteed = False
        limits_all = limits_all or bool(lim)
    if guaranteed and requests_any:
        return "Guaranteed"
    return "Burstable" if requests_any else "BestEffort"
