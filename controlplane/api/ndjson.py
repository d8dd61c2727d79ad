"""Newline-delimited JSON streams (Kubernetes watches, etcd's gateway watch), decoded as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson


async def json_lines(stream: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """Each complete JSON line of `stream`, in order; blank lines are skipped."""
    buffer = b""
    async for chunk in stream.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield orjson.loads(line)
