"""The storage conformance fixtures: every backend behind one `store` fixture.

etcd runs for real (the session-wide `etcd_server` fixture in tests/conftest.py);
each test wipes it first, so every backend starts each test empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.storage.etcd import EtcdStore
from controlplane.storage.interface import Store
from controlplane.storage.sqlite import SQLiteStore

# "sqlite-uncached" reads every key from the file: the same contract without the store's cache of newest values.
BACKENDS = ["sqlite", "sqlite-uncached", "etcd"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "state.db", compact_interval=0)
    elif request.param == "sqlite-uncached":
        s = SQLiteStore(tmp_path / "state.db", compact_interval=0, latest_cache_bytes=0)
    else:
        s = EtcdStore([request.getfixturevalue("clean_etcd")])
    await s.start()
    try:
        yield s
    finally:
        await s.close()
