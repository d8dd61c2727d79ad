from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.storage.interface import Store
from controlplane.storage.sqlite import SQLiteStore

# Every backend runs the same conformance suite; etcd joins this list when it lands.
BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = SQLiteStore(tmp_path / "state.db", compact_interval=0)
    await s.start()
    try:
        yield s
    finally:
        await s.close()
