"""Handing freed memory back to the system: glibc malloc settings and trims for the API server.

After a hostile burst (thousands of unfinished TLS handshakes, megabyte YAML bodies decoded on
the decode threads) Python frees every object, yet the process kept ~400 MB more than it
started with, because glibc kept the pages: its mmap threshold is dynamic and rises to the
largest block freed (so asyncio's 256 KiB per-connection TLS buffers move from mmap into the
heap, where a few live blocks pin the rest), every thread that allocates may get an arena of
its own, and a heap is only shrunk from its top. Three settings and a trim after bursts keep
what the process holds close to what it uses:

- a fixed mmap threshold of 128 KiB (glibc's initial value, with the dynamic rise turned off):
  big buffers are mapped and unmapped on their own;
- at most two arenas (`M_ARENA_MAX`), so the decode threads share one;
- `malloc_trim(0)` shortly after a burst ends (debounced to once a second), which returns the
  free pages inside the heap too, not only its top.

On a C library without these calls (musl) everything here does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 128 * 1024
TRIM_THRESHOLD_BYTES = 1024 * 1024
ARENA_MAX = 2
TRIM_DELAY_SECONDS = 1.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


_LIBC = _libc()


def tune_malloc() -> bool:
    """Set the fixed thresholds and the arena cap; call once at start-up, before threads exist.
    False where the C library has no `mallopt`."""
    if _LIBC is None:
        return False
    ok = all(_LIBC.mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_ARENA_MAX, ARENA_MAX)))
    if not ok:
        log.warning("mallopt refused a setting; freed memory may stay with the process longer")
    return ok


def trim_now() -> bool:
    """Return the free pages of every arena to the system. True when some memory was released."""
    return _LIBC is not None and _LIBC.malloc_trim(0) == 1


class Trimmer:
    """`trim_now` after memory was freed in bulk: `soon()` arms a timer unless one is armed, so a burst
    of calls costs one trim a second while it lasts and ends with one at most a second after its last."""

    def __init__(self, delay: float = TRIM_DELAY_SECONDS) -> None:
        self.delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.trims = 0

    def soon(self) -> None:
        if _LIBC is None:
            return
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:  # a timer of a loop since closed never fires
            self._loop = loop
            self._timer = loop.call_later(self.delay, self._run)

    def _run(self) -> None:
        self._timer = None
        self.trims += 1
        trim_now()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


TRIMMER = Trimmer()
