"""GETs read SQLite on the event loop's thread, and fall back to a worker thread when SQLite says busy.

A WAL reader is not blocked by the writer, so the busy case cannot be produced on the
store's own file while the store is open (an exclusive lock needs every other
connection closed). The fallback is exercised with a real "database is locked" error
instead: the loop's connection is pointed at a second database that another connection
holds exclusively.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from controlplane.storage.sqlite import SQLiteStore


async def test_gets_are_served_inline_and_through_a_thread_when_busy(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db", compact_interval=0, latest_cache_bytes=0)  # every get reads the file
    await store.start()
    other = tmp_path / "locked.db"
    holder = sqlite3.connect(other, isolation_level=None)
    holder.execute("CREATE TABLE log (rev, key, deleted, create_rev, value)")
    try:
        await store.create("/registry/configmaps/default/a", b"one")
        assert (await store.get("/registry/configmaps/default/a")).value == b"one"  # the loop's connection
        inline = store._inline_conn
        assert inline is not None

        holder.execute("BEGIN EXCLUSIVE")
        locked = sqlite3.connect(other, isolation_level=None, check_same_thread=False)
        locked.execute("PRAGMA busy_timeout=0")
        store._inline_conn = locked
        try:
            try:
                locked.execute("SELECT 1 FROM log").fetchone()
                raise AssertionError("the second database should be locked")
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc)
            assert (await store.get("/registry/configmaps/default/a")).value == b"one"  # via a worker thread
        finally:
            store._inline_conn = inline
            locked.close()
            holder.execute("COMMIT")
        await store.update("/registry/configmaps/default/a", b"two")
        assert (await store.get("/registry/configmaps/default/a")).value == b"two"
    finally:
        holder.close()
        await store.close()
