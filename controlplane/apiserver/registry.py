"""Generic object storage on top of the revisioned store: the verbs every resource shares.

Objects are stored as JSON without `metadata.resourceVersion`; the store's
`mod_revision` is put back on every read, as upstream does with etcd. Storage
errors become API errors here (KeyExists -> 409 AlreadyExists, Conflict ->
409 Conflict, Compacted -> 410 Expired), so handlers never see storage types.
Kind-specific behaviour is delegated to `strategies`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.api import errors, meta
from controlplane.api.resources import ResourceType
from controlplane.api.selectors import FieldSelector, LabelSelector
from controlplane.apiserver import fields, strategies
from controlplane.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
)

Obj = dict[str, Any]
MAX_UPDATE_RETRIES = 10


def decode(kv: KeyValue) -> Obj:
    obj: Obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode(obj: Obj) -> bytes:
    metadata = obj.get("metadata") or {}
    stored = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "resourceVersion"}}
    return orjson.dumps(stored)


def _parse_rv(value: str | None, rt: ResourceType, name: str = "") -> int | None:
    if value in (None, ""):
        return None
    try:
        rv = int(str(value))
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": must be a number') from None
    if rv < 0:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}"')
    return rv


def encode_continue(revision: int, last_key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision,
                                                  "start": last_key})).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(body["rv"]), str(body["start"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None


@dataclass
class ListOptions:
    namespace: str | None = None
    labels: LabelSelector | None = None
    fields: FieldSelector | None = None
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None


class Registry:
    def __init__(self, store: Store, strategy: strategies.Strategies) -> None:
        self.store = store
        self.strategy = strategy
        self._uids = meta.UidSource()

    # -- reads ---------------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        try:
            return decode(await self.store.get(rt.storage_key(namespace, name)))
        except KeyNotFoundError:
            raise errors.not_found(rt.plural, name, rt.group) from None

    async def list(self, rt: ResourceType, opts: ListOptions) -> Obj:
        revision, start_after = 0, None
        if opts.continue_token:
            revision, start_after = decode_continue(opts.continue_token)
        else:
            rv = _parse_rv(opts.resource_version, rt)
            if rv:
                revision = rv
        prefix = rt.storage_prefix(opts.namespace)
        items: list[Obj] = []
        more = False
        try:
            # Filtering happens after the read, so keep reading pages until `limit`
            # matching objects are found (as upstream does).
            while True:
                chunk = opts.limit * 2 if opts.limit else 0
                result = await self.store.list(prefix, revision=revision, limit=chunk, start_after=start_after)
                revision = result.revision
                for kv in result.items:
                    start_after = kv.key
                    obj = decode(kv)
                    if self._matches(rt, obj, opts):
                        items.append(obj)
                        if opts.limit and len(items) == opts.limit:
                            break
                if opts.limit and len(items) == opts.limit:
                    more = result.more or kv is not result.items[-1]
                    break
                if not result.more:
                    break
        except CompactedError:
            raise errors.gone("The provided continue parameter is too old to display a consistent list "
                              "result. You can start a new list without the continue parameter.") from None
        except FutureRevisionError as exc:
            raise errors.timeout(f"Too large resource version: {exc.requested}, current: {exc.current}") from None
        list_meta: Obj = {"resourceVersion": str(revision)}
        if more and start_after is not None:
            list_meta["continue"] = encode_continue(revision, start_after)
        for obj in items:
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta, "items": items}

    def _matches(self, rt: ResourceType, obj: Obj, opts: ListOptions) -> bool:
        if opts.labels is not None and not opts.labels.matches((obj.get("metadata") or {}).get("labels")):
            return False
        return opts.fields is None or not opts.fields.terms or opts.fields.matches(fields.field_set(rt, obj))

    @staticmethod
    def _selects_everything(opts: ListOptions) -> bool:
        return (opts.labels is None or opts.labels.empty) and (opts.fields is None or not opts.fields.terms)

    def matches(self, rt: ResourceType, obj: Obj, opts: ListOptions) -> bool:
        return self._matches(rt, obj, opts)

    # -- writes --------------------------------------------------------------------

    async def create(self, rt: ResourceType, namespace: str | None, obj: Obj, *, dry_run: bool = False) -> Obj:
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + meta.random_suffix()
        name = md.get("name") or ""
        if rt.namespaced:
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        md["uid"] = self._uids.new()
        md["creationTimestamp"] = meta.now_rfc3339()
        md.pop("resourceVersion", None)
        md.pop("deletionTimestamp", None)
        md.pop("deletionGracePeriodSeconds", None)
        await self.strategy.prepare_create(rt, obj)
        await self.strategy.validate(rt, obj, None)
        if dry_run:
            await self.strategy.before_store_create(rt, obj, dry_run=True)
            return obj
        await self.strategy.before_store_create(rt, obj)
        try:
            kv = await self.store.create(rt.storage_key(namespace, name), encode(obj))
        except BaseException as exc:
            await self.strategy.after_failed_write(rt, obj, None)
            if isinstance(exc, KeyExistsError):
                raise errors.already_exists(rt.plural, name, rt.group) from None
            raise
        return decode(kv)

    async def update(self, rt: ResourceType, namespace: str | None, name: str, new: Obj, *,
                     subresource: str | None = None, dry_run: bool = False,
                     on_missing: Callable[[], Awaitable[Obj]] | None = None) -> Obj:
        """PUT semantics: a resourceVersion in `new` is a precondition; none means unconditional."""
        key = rt.storage_key(namespace, name)
        expected = _parse_rv((new.get("metadata") or {}).get("resourceVersion"), rt, name)
        try:
            current_kv = await self.store.get(key)
        except KeyNotFoundError:
            if on_missing is not None:
                return await on_missing()
            raise errors.not_found(rt.plural, name, rt.group) from None
        if expected is not None and expected != current_kv.mod_revision:
            raise errors.stale_update(rt.plural, name, rt.group)
        old = decode(current_kv)
        merged = await self._prepare_update(rt, new, old, subresource, dry_run)
        if dry_run:
            return merged
        return await self._write_update(rt, key, merged, old, current_kv.mod_revision)

    async def _prepare_update(self, rt: ResourceType, new: Obj, old: Obj, subresource: str | None,
                              dry_run: bool) -> Obj:
        """The object to store; what preparing it claimed (Service addresses; nothing for a dry run) is
        given back when it is refused."""
        merged = await self.strategy.prepare_update(rt, new, old, subresource, dry_run=dry_run)
        try:
            await self.strategy.validate(rt, merged, old)
        except BaseException:
            if not dry_run:
                await self.strategy.after_failed_write(rt, merged, old)
            raise
        return merged

    async def _write_update(self, rt: ResourceType, key: str, new: Obj, old: Obj, expected: int) -> Obj:
        md = new.get("metadata") or {}
        removing = self.strategy.ready_to_remove(rt, new)
        try:
            # The last finalizer gone, the object can finally be removed.
            kv = await (self.store.delete(key, expected) if removing else self.store.update(key, encode(new), expected))
        except BaseException as exc:
            await self.strategy.after_failed_write(rt, new, old)
            if isinstance(exc, ConflictError):
                raise errors.stale_update(rt.plural, md.get("name", ""), rt.group) from None
            if isinstance(exc, KeyNotFoundError):
                raise errors.not_found(rt.plural, md.get("name", ""), rt.group) from None
            raise
        stored = decode(kv)
        await self.strategy.after_write(rt, old, None if removing else stored)
        return stored

    async def guaranteed_update(self, rt: ResourceType, namespace: str | None, name: str,
                                mutate: Callable[[Obj], Awaitable[Obj]], *, subresource: str | None = None,
                                dry_run: bool = False) -> Obj:
        """Read-modify-write with retries on conflict (PATCH and internal updates)."""
        key = rt.storage_key(namespace, name)
        for _ in range(MAX_UPDATE_RETRIES):
            try:
                current_kv = await self.store.get(key)
            except KeyNotFoundError:
                raise errors.not_found(rt.plural, name, rt.group) from None
            old = decode(current_kv)
            new = await mutate(orjson.loads(orjson.dumps(old)))
            precondition = _parse_rv((new.get("metadata") or {}).get("resourceVersion"), rt, name)
            if precondition is not None and precondition != current_kv.mod_revision:
                raise errors.stale_update(rt.plural, name, rt.group)
            merged = await self._prepare_update(rt, new, old, subresource, dry_run)
            if dry_run:
                return merged
            try:
                return await self._write_update(rt, key, merged, old, current_kv.mod_revision)
            except errors.StatusError as exc:
                if exc.reason != "Conflict" or precondition is not None:
                    raise
        raise errors.conflict(rt.plural, name, "too many concurrent updates, try again", rt.group)

    async def delete(self, rt: ResourceType, namespace: str | None, name: str, options: Obj, *,
                     dry_run: bool = False) -> tuple[Obj, bool]:
        """Delete per DeleteOptions; returns (object, removed_now)."""
        key = rt.storage_key(namespace, name)
        for _ in range(MAX_UPDATE_RETRIES):
            try:
                kv = await self.store.get(key)
            except KeyNotFoundError:
                raise errors.not_found(rt.plural, name, rt.group) from None
            obj = decode(kv)
            self._check_preconditions(rt, obj, options.get("preconditions") or {})
            updated = await self.strategy.prepare_delete(rt, obj, options)
            if dry_run:
                return (updated or obj), updated is None
            try:
                if updated is not None:
                    return decode(await self.store.update(key, encode(updated), kv.mod_revision)), False
                removed = decode(await self.store.delete(key, kv.mod_revision))
                await self.strategy.after_write(rt, obj, None)
                return removed, True
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(rt.plural, name, rt.group) from None
        raise errors.conflict(rt.plural, name, "too many concurrent updates, try again", rt.group)

    @staticmethod
    def _check_preconditions(rt: ResourceType, obj: Obj, pre: Obj) -> None:
        md = obj["metadata"]
        if pre.get("uid") and pre["uid"] != md.get("uid"):
            raise errors.conflict(rt.plural, md["name"], f"Precondition failed: UID in precondition: "
                                  f"{pre['uid']}, UID in object meta: {md.get('uid')}", rt.group)
        if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
            raise errors.conflict(rt.plural, md["name"], "Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{md.get('resourceVersion')}", rt.group)

    # -- watch ---------------------------------------------------------------------

    async def watch(self, rt: ResourceType, opts: ListOptions) -> AsyncGenerator[tuple[str, Obj], None]:
        """(type, object) pairs: ADDED/MODIFIED/DELETED, honouring selectors like upstream.

        An object that stops matching the selectors is sent as DELETED, one that starts
        matching as ADDED. Raises StatusError 410 if the start revision is compacted.
        """
        rv = _parse_rv(opts.resource_version, rt)
        if not rv:
            initial = await self.list(rt, ListOptions(opts.namespace, opts.labels, opts.fields))
            start = int(initial["metadata"]["resourceVersion"])
            for obj in initial["items"]:
                yield "ADDED", obj
        else:
            start = rv
        everything = self._selects_everything(opts)  # most watches: no previous object to decode and match
        try:
            async for event in self.store.watch(rt.storage_prefix(opts.namespace), start):
                obj = decode(event.kv)
                if everything:
                    yield ("DELETED" if event.type is EventType.DELETE else
                           "MODIFIED" if event.prev_kv is not None else "ADDED"), obj
                    continue
                now = self._matches(rt, obj, opts)
                if event.type is EventType.DELETE:
                    if now:
                        yield "DELETED", obj
                    continue
                before = event.prev_kv is not None and self._matches(rt, decode(event.prev_kv), opts)
                if now and before:
                    yield "MODIFIED", obj
                elif now:
                    yield "ADDED", obj
                elif before:
                    yield "DELETED", obj
        except CompactedError as exc:
            raise errors.gone(f"too old resource version: {start} ({exc.compacted + 1})") from None
