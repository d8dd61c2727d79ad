"""List-then-watch cache of one resource type, with event handlers and indexes.

The informer keeps a local copy of every object it was asked about, so that
controllers read from memory and only write through the API. It relists when
the server says its resourceVersion is too old (410) and then reports only the
differences; when the API server goes away it keeps its cache and retries with
backoff, so the component above it keeps working on what it knows.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
from collections.abc import Callable
from typing import Any

from controlplane.api.errors import StatusError
from controlplane.api.meta import key_of
from controlplane.api.resources import ResourceType
from controlplane.client.rest import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Handler = Callable[..., Any]


class Informer:
    def __init__(self, client: Client, rt: ResourceType, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float = 0) -> None:
        self.client = client
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self._cache: dict[str, Obj] = {}
        self._handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []
        self._indexers: dict[str, Callable[[Obj], list[str]]] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resource_version = ""

    # -- registration --------------------------------------------------------------

    def add_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                    on_delete: Handler | None = None) -> None:
        self._handlers.append((on_add, on_update, on_delete))

    def add_index(self, name: str, fn: Callable[[Obj], list[str]]) -> None:
        self._indexers[name] = fn
        self._indexes[name] = {}
        for key, obj in self._cache.items():
            self._index(key, obj)

    # -- reads -----------------------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        if namespace is None:
            return builtins.list(self._cache.values())
        return [o for o in self._cache.values() if o["metadata"].get("namespace") == namespace]

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return [self._cache[k] for k in self._indexes[name].get(value, ()) if k in self._cache]

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.rt.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for event in self.client.watch(
                        self.rt, self.namespace, label_selector=self.label_selector,
                        field_selector=self.field_selector, resource_version=self.resource_version,
                        timeout_seconds=300):
                    await self._apply(event.type, event.object)
                backoff = 0.5
            except StatusError as exc:
                if exc.code == 410:
                    need_list = True  # our resourceVersion is gone: relist and diff
                    continue
                log.warning("%s informer: %s; retrying in %.1fs", self.rt.plural, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                log.info("%s informer: connection lost (%s); keeping the cache, retrying in %.1fs",
                         self.rt.plural, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:  # aiohttp payload errors and the like: same recovery
                log.warning("%s informer: %s: %s; retrying in %.1fs", self.rt.plural, type(exc).__name__, exc, backoff)  # no repr: aiohttp's carries request headers
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _relist(self) -> None:
        fresh: dict[str, Obj] = {}
        token = None
        while True:
            page = await self.client.list(self.rt, self.namespace, label_selector=self.label_selector,
                                          field_selector=self.field_selector, limit=500, continue_=token)
            for obj in page["items"]:
                fresh[key_of(obj)] = obj
            token = page["metadata"].get("continue")
            if not token:
                self.resource_version = page["metadata"]["resourceVersion"]
                break
        for key in [k for k in self._cache if k not in fresh]:
            old = self._cache.pop(key)
            self._unindex(key, old)
            await self._dispatch(2, old)
        for key, obj in fresh.items():
            previous = self._cache.get(key)
            if previous is not None and \
                    previous["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion"):
                continue
            self._store(key, obj)
            await (self._dispatch(1, previous, obj) if previous is not None else self._dispatch(0, obj))
        self._synced.set()

    async def _apply(self, kind: str, obj: Obj) -> None:
        if kind == "BOOKMARK":
            self.resource_version = obj["metadata"]["resourceVersion"]
            return
        key = key_of(obj)
        self.resource_version = obj["metadata"].get("resourceVersion", self.resource_version)
        old = self._cache.get(key)
        if kind == "DELETED":
            if old is not None:
                del self._cache[key]
                self._unindex(key, old)
            await self._dispatch(2, obj)
            return
        self._store(key, obj)
        await (self._dispatch(1, old, obj) if old is not None else self._dispatch(0, obj))

    def _store(self, key: str, obj: Obj) -> None:
        old = self._cache.get(key)
        if old is not None:
            self._unindex(key, old)
        self._cache[key] = obj
        self._index(key, obj)

    def _index(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._indexes[name].get(value, set()).discard(key)

    async def _dispatch(self, which: int, *args: Obj) -> None:
        for handlers in self._handlers:
            handler = handlers[which]
            if handler is None:
                continue
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s informer handler failed", self.rt.plural)
