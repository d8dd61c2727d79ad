"""The embedded default store: a revision log in one SQLite file (WAL).

Every write appends a row to a log table whose autoincrement id is the global
revision, so reads at an old revision and watches from a revision are plain
queries. Lessons from kine are built in:

- one writer thread owns the only write connection and group-commits whatever
  is queued in a single transaction, so concurrent writers never meet
  "database is locked" and throughput does not collapse to one fsync per write;
- a background compactor deletes superseded rows older than a window,
  truncates the WAL and returns free pages, so a key renewed every second
  (a Lease) costs a bounded number of rows, not gigabytes;
- checkpoints run in a thread of their own (`checkpointer`), so no commit waits
  for the fsync of the database file.

`synchronous=NORMAL` in WAL mode survives the kill of the process (what an
acknowledged write must survive); a power loss may lose the last commits.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.privatefiles import create_private, private_dir
from controlplane.storage.checkpointer import WalCheckpointer
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
from controlplane.storage.latestcache import LatestValues
from controlplane.storage.watchhub import WatchHub

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_rev INTEGER NOT NULL,
    value BLOB NOT NULL,
    prev_rev INTEGER NOT NULL,
    prev_value BLOB
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# op kinds for the writer thread
_CREATE, _UPDATE, _DELETE, _COMPACT = "create", "update", "delete", "compact"


@dataclass
class _WriteOp:
    kind: str
    key: str
    value: bytes = b""
    expected: int | None = None
    # Filled by the writer thread:
    result: Any = None
    error: BaseException | None = None
    event: WatchEvent | None = None
    done: Callable[[_WriteOp], None] = field(default=lambda op: None)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def _private_database_files(path: Path) -> None:
    """The database, its -wal and -shm readable by the owner only, from creation on."""
    if not path.parent.exists():
        private_dir(path.parent)
    if not os.path.lexists(path):
        create_private(path)  # before SQLite: it gives -wal and -shm the database file's mode
    # Made readable by an earlier version: fixed by path, never by opening (closing another descriptor
    # of a database file drops the POSIX locks SQLite holds on it).
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(f"{path}{suffix}").st_mode & 0o077:
                os.chmod(f"{path}{suffix}", 0o600)


def _kv(row: tuple[Any, ...]) -> KeyValue:
    rev, key, _deleted, create_rev, value = row[:5]
    return KeyValue(key, bytes(value), create_rev, rev)


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class SQLiteStore(Store):
    def __init__(self, path: Path, *, compact_interval: float = 60.0, keep_revisions: int = 1000,
                 history_window: int = 10000, latest_cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.compact_interval = compact_interval
        self.keep_revisions = keep_revisions
        self._hub = WatchHub(history_window)
        self._latest_values = LatestValues(latest_cache_bytes)  # the newest value of keys this process wrote or read
        self._writes: queue.Queue[_WriteOp | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._written_rev = 0  # the writer thread's own count: the revision of its last committed row
        self._checkpointer = WalCheckpointer(lambda: _connect(self.path))
        self._readers = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._inline_conn: sqlite3.Connection | None = None  # point reads on the event loop's thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._rev = 0
        self._compacted = 0
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _private_database_files(self.path)
        conn = _connect(self.path)
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # effective on a new file
        conn.executescript(SCHEMA)
        self._rev = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name='log'")
                        .fetchone()[0]) if self._has_sequence(conn) else 0
        row = conn.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        self._compacted = int(row[0]) if row else 0
        self._hub.reset(self._rev)
        self._written_rev = self._rev
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it, off the commit path
        self._checkpointer.start()
        self._writer = threading.Thread(target=self._write_loop, args=(conn,), name="sqlite-writer", daemon=True)
        self._writer.start()
        if self.compact_interval > 0:
            self._compactor = asyncio.create_task(self._compact_periodically())

    @staticmethod
    def _has_sequence(conn: sqlite3.Connection) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").fetchone() is not None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._compactor:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        self._writes.put(None)
        if self._writer:
            await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._checkpointer.stop)
        self._hub.close()
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._inline_conn = None
        self._latest_values.clear()

    # -- reads -------------------------------------------------------------------

    def _open_reader(self) -> sqlite3.Connection:
        """A read connection, closed with the store."""
        conn = _connect(self.path)
        with self._reader_lock:
            self._reader_conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._open_reader()
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise StorageError("store is closed")
        return await asyncio.to_thread(lambda: fn(self._reader()))

    async def _point_read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """A read of one row by index, on the event loop's thread: a WAL reader does not wait for the
        writer, and the hop to a worker thread cost more than the query (GET p99). Should the database
        be busy all the same (recovery, a checkpoint), the read waits in a worker thread instead."""
        if self._closed:
            raise StorageError("store is closed")
        if self._inline_conn is None:
            self._inline_conn = self._open_reader()
            self._inline_conn.execute("PRAGMA busy_timeout=0")  # never block the event loop: fall back instead
        try:
            return fn(self._inline_conn)
        except sqlite3.OperationalError as exc:
            log.debug("point read on the loop refused (%s); reading in a worker thread", exc)
            return await self._read(fn)

    async def current_revision(self) -> int:
        return self._rev

    async def compacted_revision(self) -> int:
        return self._compacted

    def _check_revision(self, revision: int) -> int:
        if revision == 0:
            return self._rev
        if revision > self._rev:
            raise FutureRevisionError(revision, self._rev)
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        return revision

    async def get(self, key: str, revision: int = 0) -> KeyValue:
        at = self._check_revision(revision)
        cached = self._latest_values.get(key)
        if cached is not None and cached.mod_revision <= at:
            return cached  # unchanged since `at`: every write of this file passes through this process

        def query(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                "SELECT rev, key, deleted, create_rev, value FROM log WHERE key=? AND rev<=? "
                "ORDER BY rev DESC LIMIT 1", (key, at)).fetchone()
            return row

        row = await self._point_read(query)
        if row is None or row[2]:
            raise KeyNotFoundError(key)
        kv = _kv(row)
        if at == self._rev:  # read at the newest revision, and no write was published meanwhile
            self._latest_values.put(kv)
        return kv

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str | None = None) -> ListResult:
        at = self._check_revision(revision)
        low = start_after if start_after is not None and start_after >= prefix else None

        def query(conn: sqlite3.Connection) -> builtins.list[tuple[Any, ...]]:
            sql = ("SELECT l.rev, l.key, l.deleted, l.create_rev, l.value FROM log l JOIN "
                   "(SELECT MAX(rev) AS mrev FROM log WHERE key>=? AND key<? AND rev<=? {after} GROUP BY key) m "
                   "ON l.rev = m.mrev WHERE l.deleted=0 ORDER BY l.key")
            args: builtins.list[Any] = [prefix, _prefix_end(prefix), at]
            sql = sql.format(after="AND key>?" if low is not None else "")
            if low is not None:
                args.append(low)
            if limit:
                sql += " LIMIT ?"
                args.append(limit + 1)
            return conn.execute(sql, args).fetchall()

        rows = await self._read(query)
        more = bool(limit) and len(rows) > limit
        return ListResult([_kv(r) for r in (rows[:limit] if limit else rows)], at, more)

    async def count(self, prefix: str) -> int:
        result = await self.list(prefix)
        return len(result.items)

    # -- writes ------------------------------------------------------------------

    async def _submit(self, op: _WriteOp) -> Any:
        if self._closed:
            raise StorageError("store is closed")
        assert self._loop is not None
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()

        def done(finished: _WriteOp) -> None:
            def resolve() -> None:
                if finished.event is not None:
                    self._rev = max(self._rev, finished.event.revision)
                    self._remember(finished.event)
                    self._hub.publish(finished.event)
                if finished.kind == _COMPACT and finished.error is None:
                    self._compacted = max(self._compacted, int(finished.result))
                if future.done():
                    return
                if finished.error is not None:
                    future.set_exception(finished.error)
                else:
                    future.set_result(finished.result)
            loop.call_soon_threadsafe(resolve)

        op.done = done
        self._writes.put(op)
        return await future

    def _remember(self, event: WatchEvent) -> None:
        if event.type is EventType.PUT:
            self._latest_values.put(event.kv)
        else:
            self._latest_values.drop(event.kv.key)

    async def create(self, key: str, value: bytes) -> KeyValue:
        result: KeyValue = await self._submit(_WriteOp(_CREATE, key, value))
        return result

    async def update(self, key: str, value: bytes, expected_mod_revision: int | None = None) -> KeyValue:
        result: KeyValue = await self._submit(_WriteOp(_UPDATE, key, value, expected_mod_revision))
        return result

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        result: KeyValue = await self._submit(_WriteOp(_DELETE, key, b"", expected_mod_revision))
        return result

    async def compact(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        await self._submit(_WriteOp(_COMPACT, "", b"", revision))

    # -- the writer thread ---------------------------------------------------------

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self._writes.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < 512:
                try:
                    nxt = self._writes.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._apply_batch(conn, batch)
            if stop:
                break
        conn.close()

    def _apply_batch(self, conn: sqlite3.Connection, batch: builtins.list[_WriteOp]) -> None:
        # Every call into SQLite gives up the GIL, and taking it back can mean waiting for the event
        # loop's thread: an operation is one SELECT and one INSERT, with no savepoint around it,
        # because `_apply` refuses an operation (StorageError) before it writes anything.
        committed_rev = self._written_rev
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                try:
                    self._apply(conn, op)
                except StorageError as exc:
                    op.error, op.event, op.result = exc, None, None
            conn.execute("COMMIT")
            self._checkpointer.committed(self._written_rev - committed_rev)
        except Exception as exc:  # the whole transaction failed: nothing of it is stored
            log.exception("sqlite write batch failed")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._written_rev = committed_rev
            for op in batch:
                op.error, op.event = StorageError(f"write failed: {exc}"), None
        for op in batch:
            op.done(op)

    @staticmethod
    def _latest(conn: sqlite3.Connection, key: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = conn.execute(
            "SELECT rev, key, deleted, create_rev, value FROM log WHERE key=? ORDER BY rev DESC LIMIT 1",
            (key,)).fetchone()
        return row

    def _apply(self, conn: sqlite3.Connection, op: _WriteOp) -> None:
        """One operation inside the batch's transaction; a refusal is raised before anything is written.

        This thread is the file's only writer, so it numbers the rows itself (`_written_rev`) and a
        create stores its create_rev in the same INSERT."""
        if op.kind == _COMPACT:
            op.result = self._compact_in(conn, int(op.expected or 0))
            return
        latest = self._latest(conn, op.key)
        live = latest is not None and not latest[2]
        rev = self._written_rev + 1
        previous: KeyValue | None = None
        if op.kind == _CREATE:
            if live:
                raise KeyExistsError(op.key)
            # (rev, key, deleted, create_rev, value, prev_rev, prev_value)
            row: tuple[Any, ...] = (rev, op.key, 0, rev, op.value, 0, None)
            result = KeyValue(op.key, op.value, rev, rev)
        else:
            if not live:
                raise KeyNotFoundError(op.key)
            assert latest is not None
            previous = _kv(latest)
            if op.expected is not None and op.expected != previous.mod_revision:
                raise ConflictError(op.key, previous)
            deleting = op.kind != _UPDATE
            value = previous.value if deleting else op.value  # a deletion row repeats the last value
            row = (rev, op.key, int(deleting), previous.create_revision, value, previous.mod_revision,
                   previous.value)
            result = KeyValue(op.key, value, previous.create_revision, rev)
        conn.execute("INSERT INTO log (rev, key, deleted, create_rev, value, prev_rev, prev_value) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        self._written_rev = rev
        op.result = result
        op.event = WatchEvent(EventType.DELETE if row[2] else EventType.PUT, result, previous)

    def _compact_in(self, conn: sqlite3.Connection, revision: int) -> int:
        # A row at or below `revision` is needed only if it is its key's newest row at or
        # below `revision` and not a deletion: reads at revision >= `revision` may need it.
        conn.execute(
            "DELETE FROM log WHERE rev<=? AND (deleted=1 OR rev < "
            "(SELECT MAX(l2.rev) FROM log l2 WHERE l2.key=log.key AND l2.rev<=?))",
            (revision, revision))
        conn.execute("INSERT INTO meta (name, value) VALUES ('compacted', ?) "
                     "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (revision,))
        return revision

    # -- background compaction -----------------------------------------------------

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.compact_interval)
            try:
                await self.compact_now()
            except Exception:
                log.exception("compaction failed")

    async def compact_now(self) -> None:
        """Compact to `current - keep_revisions`, then truncate the WAL and free pages."""
        target = self._rev - self.keep_revisions
        if target > self._compacted:
            await self.compact(target)

        def shrink(conn: sqlite3.Connection) -> None:
            conn.execute("PRAGMA incremental_vacuum")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self._read(shrink)

    # -- watch ---------------------------------------------------------------------

    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        return self._watch(prefix, after_revision)

    async def _watch(self, prefix: str, after_revision: int) -> AsyncIterator[WatchEvent]:
        if after_revision < self._compacted:
            raise CompactedError(after_revision, self._compacted)
        subscription = self._hub.subscribe(prefix)
        try:
            last = after_revision
            if not self._hub.covers(after_revision):
                # Older than the in-memory window: replay history from the log first.
                for event in await self._read(lambda c: self._history(c, prefix, after_revision)):
                    last = event.revision
                    yield event
            async for event in subscription.events(after=last, hub=self._hub):
                yield event
        finally:
            self._hub.unsubscribe(subscription)

    def _history(self, conn: sqlite3.Connection, prefix: str, after: int) -> builtins.list[WatchEvent]:
        rows = conn.execute(
            "SELECT rev, key, deleted, create_rev, value, prev_rev, prev_value FROM log "
            "WHERE rev>? AND key>=? AND key<? ORDER BY rev", (after, prefix, _prefix_end(prefix))).fetchall()
        events = []
        for rev, key, deleted, create_rev, value, prev_rev, prev_value in rows:
            kv = KeyValue(key, bytes(value), create_rev, rev)
            prev = KeyValue(key, bytes(prev_value), create_rev, prev_rev) if prev_value is not None else None
            events.append(WatchEvent(EventType.DELETE if deleted else EventType.PUT, kv, prev))
        return events
