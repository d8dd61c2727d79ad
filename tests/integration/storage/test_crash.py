"""A writer killed with SIGKILL mid-burst loses no acknowledged write and leaves nothing half-written."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import orjson

from controlplane.storage.sqlite import SQLiteStore

WRITER = """
import asyncio, sys
from pathlib import Path
from controlplane.storage.sqlite import SQLiteStore

async def main():
    store = SQLiteStore(Path(sys.argv[1]), compact_interval=0)
    await store.start()
    async def one(i):
        kv = await store.create(f"/registry/configmaps/default/cm{i:05d}", b'{"n": %d}' % i)
        print(f"{i} {kv.mod_revision}", flush=True)
    i = 0
    while True:
        await asyncio.gather(*(one(i + j) for j in range(20)))
        i += 20

asyncio.run(main())
"""


async def test_sigkill_mid_burst_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(db),
                                                stdout=asyncio.subprocess.PIPE, cwd=os.getcwd())
    acknowledged: dict[int, int] = {}
    assert proc.stdout is not None
    try:
        while len(acknowledged) < 3000:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            index, revision = map(int, line.split())
            acknowledged[index] = revision
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    # Lines still buffered in the pipe were acknowledged too.
    rest = await proc.stdout.read()
    for line in rest.splitlines():
        index, revision = map(int, line.split())
        acknowledged[index] = revision

    store = SQLiteStore(db, compact_interval=0)
    await store.start()
    try:
        listed = await store.list("/registry/configmaps/default/")
        stored = {int(kv.key[-5:]): kv for kv in listed.items}
        for index, revision in acknowledged.items():
            assert index in stored, f"acknowledged write {index} lost"
            assert stored[index].mod_revision == revision
            assert orjson.loads(stored[index].value) == {"n": index}
        for kv in listed.items:  # whatever else survived is whole, never torn
            assert orjson.loads(kv.value)["n"] == int(kv.key[-5:])
        assert await store.current_revision() >= max(acknowledged.values())
        new = await store.create("/registry/configmaps/default/after", b"{}")
        assert new.mod_revision > max(acknowledged.values())
    finally:
        await store.close()
