"""The distributed store: etcd v3, through its JSON gateway (`/v3/kv/*`, `/v3/watch`).

etcd already is a revisioned key-value store with one global revision, so this
backend maps the contract onto it directly: create is a transaction comparing
`create_revision == 0`, a conditional update or delete compares
`mod_revision`, reads take `revision`, and watches start at `after + 1` with
previous values. The JSON gateway of etcd 3.4 speaks the same messages as its
gRPC API (keys and values base64-encoded), over the aiohttp client the project
already uses.
"""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from controlplane.api.ndjson import json_lines
from controlplane.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StorageError,
    Store,
    WatchEvent,
)

Obj = dict[str, Any]


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return _b64(bytes(raw))
        raw.pop()
    return _b64(b"\x00")


def _kv(data: Obj) -> KeyValue:
    return KeyValue(base64.b64decode(data["key"]).decode(), base64.b64decode(data.get("value", "")),
                    int(data.get("create_revision", 0)), int(data.get("mod_revision", 0)))


class EtcdStore(Store):
    def __init__(self, endpoints: list[str], *, timeout: float = 10.0) -> None:
        self.endpoints = [e if "://" in e else f"http://{e}" for e in endpoints]
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._compacted = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        await self.current_revision()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, path: str, body: Obj) -> Obj:
        if self._session is None:
            raise StorageError("store is closed")
        last: Exception | None = None
        for endpoint in random.sample(self.endpoints, len(self.endpoints)):
            try:
                async with self._session.post(endpoint + path, data=orjson.dumps(body)) as resp:
                    payload: Obj = orjson.loads(await resp.read())
                    if resp.status >= 400 or "error" in payload:
                        self._raise(payload)
                    return payload
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                last = exc
        raise StorageError(f"no etcd endpoint answered: {last}")

    def _raise(self, payload: Obj) -> None:
        message = str(payload.get("error") or payload.get("message") or payload)
        if "compacted" in message:
            raise CompactedError(0, self._compacted)
        if "future revision" in message:
            raise FutureRevisionError(0, 0)
        raise StorageError(f"etcd: {message}")

    async def current_revision(self) -> int:
        reply = await self._call("/v3/kv/range", {"key": _b64("\x00"), "count_only": True})
        return int(reply["header"]["revision"])

    async def compacted_revision(self) -> int:
        return self._compacted

    async def create(self, key: str, value: bytes) -> KeyValue:
        txn = {"compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
               "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}]}
        reply = await self._call("/v3/kv/txn", txn)
        if not reply.get("succeeded"):
            raise KeyExistsError(key)
        rev = int(reply["header"]["revision"])
        return KeyValue(key, value, rev, rev)

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        current = await self.get(key)
        expected = expected_mod_revision if expected_mod_revision is not None else current.mod_revision
        txn = {"compare": [{"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(expected)}],
               "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}],
               "failure": [{"request_range": {"key": _b64(key)}}]}
        reply = await self._call("/v3/kv/txn", txn)
        if not reply.get("succeeded"):
            kvs = (reply.get("responses") or [{}])[0].get("response_range", {}).get("kvs") or []
            if not kvs:
                raise KeyNotFoundError(key)
            if expected_mod_revision is None:
                return await self.update(key, value, None)  # raced with another writer: retry
            raise ConflictError(key, _kv(kvs[0]))
        rev = int(reply["header"]["revision"])
        return KeyValue(key, value, current.create_revision, rev)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        compare = []
        if expected_mod_revision is not None:
            compare = [{"key": _b64(key), "target": "MOD", "result": "EQUAL",
                        "mod_revision": str(expected_mod_revision)}]
        txn = {"compare": compare, "success": [{"request_delete_range": {"key": _b64(key), "prev_kv": True}}],
               "failure": [{"request_range": {"key": _b64(key)}}]}
        reply = await self._call("/v3/kv/txn", txn)
        response = (reply.get("responses") or [{}])[0]
        if not reply.get("succeeded"):
            kvs = response.get("response_range", {}).get("kvs") or []
            if not kvs:
                raise KeyNotFoundError(key)
            raise ConflictError(key, _kv(kvs[0]))
        prev = response.get("response_delete_range", {}).get("prev_kvs") or []
        if not prev:
            raise KeyNotFoundError(key)
        last = _kv(prev[0])
        return KeyValue(key, last.value, last.create_revision, int(reply["header"]["revision"]))

    async def _check_revision(self, revision: int) -> None:
        if revision and revision <= self._compacted:
            raise CompactedError(revision, self._compacted)
        if revision and revision > await self.current_revision():
            raise FutureRevisionError(revision, await self.current_revision())

    async def get(self, key: str, revision: int = 0) -> KeyValue:
        await self._check_revision(revision)
        body: Obj = {"key": _b64(key)}
        if revision:
            body["revision"] = str(revision)
        reply = await self._call("/v3/kv/range", body)
        kvs = reply.get("kvs") or []
        if not kvs:
            raise KeyNotFoundError(key)
        return _kv(kvs[0])

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str | None = None) -> ListResult:
        await self._check_revision(revision)
        start = start_after + "\x00" if start_after is not None and start_after >= prefix else prefix
        body: Obj = {"key": _b64(start), "range_end": _prefix_end(prefix)}
        if revision:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        reply = await self._call("/v3/kv/range", body)
        items = [_kv(kv) for kv in reply.get("kvs") or []]
        at = revision or int(reply["header"]["revision"])
        return ListResult(items, at, bool(reply.get("more")))

    async def count(self, prefix: str) -> int:
        reply = await self._call("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix),
                                                  "count_only": True})
        return int(reply.get("count", 0))

    async def compact(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        await self._call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        self._compacted = revision

    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        return self._watch(prefix, after_revision)

    async def _watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        if after_revision < self._compacted:
            raise CompactedError(after_revision, self._compacted)
        if self._session is None:
            raise StorageError("store is closed")
        request = {"create_request": {"key": _b64(prefix), "range_end": _prefix_end(prefix),
                                      "start_revision": str(after_revision + 1), "prev_kv": True}}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.post(self.endpoints[0] + "/v3/watch", data=orjson.dumps(request),
                                      timeout=timeout) as resp:
            async for message in json_lines(resp.content):
                result = message.get("result") or {}
                if int(result.get("compact_revision", 0) or 0):
                    raise CompactedError(after_revision, int(result["compact_revision"]) - 1)
                for event in result.get("events") or []:
                    yield self._event(event)

    @staticmethod
    def _event(event: Obj) -> WatchEvent:
        kv = _kv(event["kv"])
        prev = _kv(event["prev_kv"]) if event.get("prev_kv") else None
        if event.get("type") == "DELETE":
            return WatchEvent(EventType.DELETE, KeyValue(kv.key, prev.value if prev else b"",
                                                         prev.create_revision if prev else 0, kv.mod_revision), prev)
        return WatchEvent(EventType.PUT, kv, prev)

