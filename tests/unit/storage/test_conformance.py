"""The storage contract (controlplane/storage/interface.py), backend-independent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controlplane.storage.interface import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    Store,
    WatchEvent,
)
from controlplane.storage.sqlite import SQLiteStore


async def test_create_get_and_duplicate(store: Store) -> None:
    kv = await store.create("/registry/pods/default/a", b"one")
    assert kv.create_revision == kv.mod_revision == await store.current_revision()
    assert (await store.get("/registry/pods/default/a")).value == b"one"
    with pytest.raises(KeyExistsError):
        await store.create("/registry/pods/default/a", b"two")
    assert (await store.get("/registry/pods/default/a")).value == b"one"


async def test_update_with_precondition(store: Store) -> None:
    kv = await store.create("/k", b"1")
    kv2 = await store.update("/k", b"2", expected_mod_revision=kv.mod_revision)
    assert kv2.mod_revision > kv.mod_revision and kv2.create_revision == kv.create_revision
    with pytest.raises(ConflictError) as err:
        await store.update("/k", b"3", expected_mod_revision=kv.mod_revision)
    assert err.value.current.value == b"2"
    assert (await store.update("/k", b"4")).value == b"4"  # unconditional
    with pytest.raises(KeyNotFoundError):
        await store.update("/missing", b"x")


async def test_delete_with_precondition(store: Store) -> None:
    kv = await store.create("/k", b"1")
    with pytest.raises(ConflictError):
        await store.delete("/k", expected_mod_revision=kv.mod_revision + 100)
    deleted = await store.delete("/k", expected_mod_revision=kv.mod_revision)
    assert deleted.value == b"1" and deleted.mod_revision > kv.mod_revision
    with pytest.raises(KeyNotFoundError):
        await store.get("/k")
    with pytest.raises(KeyNotFoundError):
        await store.delete("/k")
    again = await store.create("/k", b"new")  # a deleted key can be created again
    assert again.create_revision == again.mod_revision > deleted.mod_revision


async def test_get_at_old_and_future_revisions(store: Store) -> None:
    first = await store.create("/k", b"1")
    await store.update("/k", b"2")
    assert (await store.get("/k", revision=first.mod_revision)).value == b"1"
    with pytest.raises(FutureRevisionError):
        await store.get("/k", revision=await store.current_revision() + 5)


async def test_list_prefix_is_exact(store: Store) -> None:
    await store.create("/registry/pods/default/a", b"a")
    await store.create("/registry/pods/default/b", b"b")
    await store.create("/registry/pods/default2/c", b"c")
    result = await store.list("/registry/pods/default/")
    assert [kv.key for kv in result.items] == ["/registry/pods/default/a", "/registry/pods/default/b"]
    assert result.revision == await store.current_revision()
    assert await store.count("/registry/pods/") == 3


async def test_list_at_old_revision_sees_the_past(store: Store) -> None:
    await store.create("/p/a", b"a1")
    rev = (await store.create("/p/b", b"b1")).mod_revision
    await store.update("/p/a", b"a2")
    await store.delete("/p/b")
    await store.create("/p/c", b"c1")
    past = await store.list("/p/", revision=rev)
    assert [(kv.key, kv.value) for kv in past.items] == [("/p/a", b"a1"), ("/p/b", b"b1")]
    now = await store.list("/p/")
    assert [(kv.key, kv.value) for kv in now.items] == [("/p/a", b"a2"), ("/p/c", b"c1")]


async def test_pagination_reads_one_revision_while_writes_happen(store: Store) -> None:
    for i in range(10):
        await store.create(f"/p/{i:02d}", b"x")
    page = await store.list("/p/", limit=4)
    assert page.more and len(page.items) == 4
    seen = [kv.key for kv in page.items]
    await store.create("/p/05a", b"late")  # written after the first page
    await store.delete("/p/09")
    while page.more:
        page = await store.list("/p/", revision=page.revision, limit=4, start_after=seen[-1])
        seen += [kv.key for kv in page.items]
    assert seen == [f"/p/{i:02d}" for i in range(10)]


async def test_watch_history_then_live_in_order(store: Store) -> None:
    start = await store.current_revision()
    await store.create("/w/a", b"1")
    await store.update("/w/a", b"2")
    await store.create("/other/x", b"not mine")
    events: list[WatchEvent] = []

    async def consume() -> None:
        async for event in store.watch("/w/", start):
            events.append(event)
            if len(events) == 4:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await store.create("/w/b", b"3")
    await store.delete("/w/a")
    await asyncio.wait_for(task, 5)
    assert [(e.type, e.kv.key, e.kv.value) for e in events] == [
        (EventType.PUT, "/w/a", b"1"), (EventType.PUT, "/w/a", b"2"),
        (EventType.PUT, "/w/b", b"3"), (EventType.DELETE, "/w/a", b"2"),
    ]
    revisions = [e.revision for e in events]
    assert revisions == sorted(set(revisions))
    assert events[1].prev_kv is not None and events[1].prev_kv.value == b"1"
    assert events[3].kv.mod_revision == await store.current_revision()


async def test_watch_below_compaction_is_refused(store: Store) -> None:
    for i in range(5):
        await store.create(f"/c/{i}", b"x")
    await store.compact(await store.current_revision() - 1)
    with pytest.raises(CompactedError):
        async for _ in store.watch("/c/", 1):
            break
    with pytest.raises(CompactedError):
        await store.get("/c/0", revision=1)
    # Live keys keep their values after compaction.
    assert len((await store.list("/c/")).items) == 5


async def test_concurrent_writers_never_fail(store: Store) -> None:
    async def writer(n: int) -> None:
        for i in range(40):
            await store.create(f"/cc/{n}/{i}", b"v" * 500)

    await asyncio.gather(*(writer(n) for n in range(25)))
    assert await store.count("/cc/") == 1000


async def test_restart_keeps_data_and_revision(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db", compact_interval=0)
    await s.start()
    await s.create("/r/a", b"1")
    rev = (await s.update("/r/a", b"2")).mod_revision
    await s.compact(rev - 1)
    await s.close()
    s = SQLiteStore(tmp_path / "db", compact_interval=0)
    await s.start()
    try:
        assert await s.current_revision() == rev
        assert await s.compacted_revision() == rev - 1
        assert (await s.get("/r/a")).value == b"2"
        assert (await s.create("/r/b", b"3")).mod_revision == rev + 1
    finally:
        await s.close()
