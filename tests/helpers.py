"""Bounded polling for tests: wait for a condition with a deadline, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 30.0,
                     interval: float = 0.1) -> None:
    """Poll `check` (sync or async) until it is true; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(interval)


def poll(check: Callable[[], bool], timeout: float = 120.0, interval: float = 1.0) -> None:
    """The blocking form of `eventually`, for tests that drive subprocesses."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(interval)
