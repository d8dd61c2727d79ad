"""Handing freed memory back to the kernel after a full sync.

A full sync at 10k services allocates and frees tens of MB in a few seconds
(the whole ruleset as text, the encoded copy nft or iptables-restore reads).
glibc keeps freed heap memory for reuse and gives back only what sits at the
top of the heap, so without help the proxy's resident size stays at that
peak. `malloc_trim(0)` returns every free page, wherever it is (a few ms).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
_trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
    _trim.restype = ctypes.c_int
except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
    _trim = None


def release_free_memory() -> bool:
    """Return free heap pages to the kernel (glibc only); True if that was possible."""
    if _trim is None:
        return False
    _trim(0)
    return True
