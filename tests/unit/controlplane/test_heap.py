"""glibc malloc settings and the debounced trim of controlplane/heap.py."""

from __future__ import annotations

import asyncio
import platform

import pytest

from controlplane import heap

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt/malloc_trim are glibc's")


@glibc_only
def test_glibc_takes_the_settings() -> None:
    assert heap.tune_malloc() is True


@glibc_only
def test_a_trim_returns_freed_pages() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(2000)]  # under the mmap threshold: in the heap
    del blocks[::2]
    assert heap.trim_now() is True  # the holes left by every other block go back


@glibc_only
async def test_a_burst_costs_one_trim_and_ends_with_one() -> None:
    trimmer = heap.Trimmer(delay=0.05)
    for _ in range(100):
        trimmer.soon()
    await asyncio.sleep(0.2)
    assert trimmer.trims == 1
    trimmer.soon()
    trimmer.cancel()
    await asyncio.sleep(0.1)
    assert trimmer.trims == 1
