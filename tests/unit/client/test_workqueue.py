from __future__ import annotations

import asyncio

import pytest

from controlplane.client.workqueue import ShutDownError, WorkQueue


async def test_dedup_while_waiting() -> None:
    q = WorkQueue("t")
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_key_added_while_processing_is_processed_again_after_done() -> None:
    q = WorkQueue("t")
    q.add("a")
    key = await q.get()
    q.add("a")  # changed again while a worker holds it
    assert len(q) == 0  # not handed to a second worker
    q.done(key)
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_rate_limited_backoff_grows_and_forget_resets() -> None:
    q = WorkQueue("t", base_delay=0.01)
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 2
    assert await asyncio.wait_for(q.get(), 1) == "a"
    q.done("a")
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_add_after_delays() -> None:
    q = WorkQueue("t")
    q.add_after("later", 0.05)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 1) == "later"


async def test_shutdown_wakes_waiters() -> None:
    q = WorkQueue("t")
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDownError):
        await asyncio.wait_for(waiter, 1)
