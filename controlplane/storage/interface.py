"""The storage contract every backend implements (SQLite, etcd).

One global revision orders every write. Keys are opaque strings
(`/registry/<resource>/<namespace>/<name>`), values opaque bytes: the API
server stores objects without `metadata.resourceVersion` and sets it on read
from `mod_revision`, as upstream does with etcd.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass


class StorageError(Exception):
    """Base class of every storage failure."""


class KeyExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """The precondition `expected_mod_revision` did not hold; `current` is what is stored now."""

    def __init__(self, key: str, current: KeyValue) -> None:
        super().__init__(f"revision conflict on {key}: stored mod_revision {current.mod_revision}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    """A read or watch asked for a revision older than the compacted one."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest available is {compacted + 1})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StorageError):
    """A read asked for a revision that does not exist yet."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For PUT, `kv` is the new value and `prev_kv` the old one (None on create).

    For DELETE, `kv.value` is the last value before deletion and `kv.mod_revision`
    is the revision of the deletion itself.
    """

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the revision the list was read at
    more: bool  # True when `limit` cut the list; continue with start_after=items[-1].key at the same revision


class Store(abc.ABC):
    """An async, revisioned key-value store with watch."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the store (create schema, start background compaction)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop background work, end every watch, release resources."""

    @abc.abstractmethod
    async def current_revision(self) -> int: ...

    @abc.abstractmethod
    async def compacted_revision(self) -> int:
        """The newest revision that has been compacted away (0 if none)."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KeyValue:
        """Store a new key; raise KeyExistsError if it exists."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        """Replace a key's value. KeyNotFoundError if absent; ConflictError if the precondition fails."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        """Delete a key and return its last value (mod_revision = the deletion's revision)."""

    @abc.abstractmethod
    async def get(self, key: str, revision: int = 0) -> KeyValue:
        """The value at `revision` (0: latest). KeyNotFoundError, CompactedError, FutureRevisionError."""

    @abc.abstractmethod
    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str | None = None) -> ListResult:
        """Keys under `prefix` in key order, as of `revision` (0: latest), at most `limit` (0: all)."""

    @abc.abstractmethod
    async def count(self, prefix: str) -> int:
        """How many keys are under `prefix` now."""

    @abc.abstractmethod
    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        """Every change under `prefix` with revision > `after_revision`, in order, then live changes.

        Raises CompactedError (when iterated) if `after_revision` is below the compacted
        revision. The iterator ends when the store closes or the consumer stops iterating;
        a consumer too slow to keep up is ended with CompactedError rather than buffered forever.
        """

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at or below `revision` (latest values of live keys are kept)."""
