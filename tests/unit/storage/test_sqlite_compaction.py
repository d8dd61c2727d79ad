"""kine's failure, guarded against: constant Lease renewals must not grow the database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from controlplane.storage.sqlite import SQLiteStore


def _size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def test_lease_renewals_stay_bounded_after_compaction(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SQLiteStore(db, compact_interval=0, keep_revisions=100)
    await store.start()
    try:
        keys = [f"/registry/leases/kube-node-lease/node{i}" for i in range(3)]
        for key in keys:
            await store.create(key, b"x" * 400)
        for _round in range(40):
            await asyncio.gather(*(store.update(k, b"y" * 400) for k in keys for _ in range(100)))
            await store.compact_now()
        rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM log").fetchone()[0]
        assert rows <= 100 + len(keys)
        # 12,000 writes of 400 bytes would be ~5 MB uncompacted.
        assert _size(db) < 1_000_000
        for key in keys:
            assert (await store.get(key)).value == b"y" * 400
    finally:
        await store.close()
