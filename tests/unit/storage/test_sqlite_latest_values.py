"""The SQLite store's cache of newest values, and its checkpointer thread.

The cache may only ever answer what the file would: these tests read through it
after updates, deletes, reads at older revisions, eviction and a restart. The
checkpointer must move committed rows into the database file while the writer's
own automatic checkpoint is off.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from controlplane.storage.interface import KeyNotFoundError, KeyValue
from controlplane.storage.latestcache import LatestValues
from controlplane.storage.sqlite import SQLiteStore


def test_latest_values_evicts_least_recently_used_by_bytes() -> None:
    cache = LatestValues(max_bytes=3 * (1000 + 200 + 2))
    for name in ("/a", "/b", "/c"):
        cache.put(KeyValue(name, b"x" * 1000, 1, 1))
    assert len(cache) == 3
    assert cache.get("/a") is not None  # now the most recently used
    cache.put(KeyValue("/d", b"x" * 1000, 2, 2))
    assert cache.get("/b") is None  # the least recently used went
    assert {k for k in ("/a", "/c", "/d") if cache.get(k) is not None} == {"/a", "/c", "/d"}
    cache.put(KeyValue("/a", b"y" * 10, 1, 3))  # a replaced value is accounted at its new size
    assert cache.size_bytes == 2 * 1202 + 10 + 2 + 200
    cache.drop("/a")
    assert cache.get("/a") is None and cache.size_bytes == 2 * 1202
    cache.put(KeyValue("/huge", b"x" * 10_000, 4, 4))  # bigger than the whole budget: not kept
    assert cache.get("/huge") is None and len(cache) == 2


async def test_reads_through_the_cache_answer_what_the_file_holds(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db", compact_interval=0)
    await store.start()
    try:
        first = await store.create("/registry/configmaps/default/a", b"one")
        second = await store.update("/registry/configmaps/default/a", b"two")
        assert (await store.get("/registry/configmaps/default/a")).value == b"two"
        assert (await store.get("/registry/configmaps/default/a", revision=first.mod_revision)).value == b"one"
        assert await store.get("/registry/configmaps/default/a", revision=second.mod_revision) == second
        gone = await store.delete("/registry/configmaps/default/a")
        with pytest.raises(KeyNotFoundError):
            await store.get("/registry/configmaps/default/a")
        assert (await store.get("/registry/configmaps/default/a", revision=gone.mod_revision - 1)).value == b"two"
        again = await store.create("/registry/configmaps/default/a", b"three")
        assert (await store.get("/registry/configmaps/default/a")).create_revision == again.mod_revision
    finally:
        await store.close()


async def test_evicted_and_restarted_keys_are_read_from_the_file(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db", compact_interval=0, latest_cache_bytes=2_000)
    await store.start()
    try:
        written = [await store.create(f"/k/{i}", f"value-{i}".encode() * 20) for i in range(50)]
        assert len(store._latest_values) < 50  # most were evicted
        for kv in written:
            assert await store.get(kv.key) == kv
    finally:
        await store.close()
    store = SQLiteStore(tmp_path / "state.db", compact_interval=0)
    await store.start()
    try:
        assert len(store._latest_values) == 0
        assert await store.get(written[7].key) == written[7]  # read from the file, then remembered
        assert await store.get(written[7].key) == written[7]
        assert len(store._latest_values) == 1
    finally:
        await store.close()


async def test_checkpointer_moves_committed_rows_into_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SQLiteStore(db, compact_interval=0)
    store._checkpointer.rows_per_checkpoint = 200
    await store.start()
    try:
        empty_size = db.stat().st_size
        await asyncio.gather(*(store.create(f"/c/{i}", b"v" * 1000) for i in range(1000)))
        for _ in range(100):
            if store._checkpointer.checkpoints >= 1 and db.stat().st_size > 500_000:
                break
            await asyncio.sleep(0.05)
        assert store._checkpointer.checkpoints >= 1
        assert db.stat().st_size > 500_000  # the rows reached the file itself, not just the WAL
        assert db.stat().st_size > empty_size
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM log").fetchone()[0] == 1000
    finally:
        await store.close()
