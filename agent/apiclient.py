"""The agent's API client: the project's client with a bound on requests in flight.

The client speaks HTTP/1.1, one request per connection at a time, and its
connection pool opens a new TLS connection whenever every open one is busy.
When a hundred pod workers post their statuses and events at once, that is
about a hundred connections, each with ~130 KB of TLS buffers in Python plus
OpenSSL's own, kept resident after the burst. Upstream's kubelet has a single
HTTP/2 connection and a client-side rate limit (50 QPS, burst 100); here a
bound on concurrent requests keeps the pool small. The API server handles
requests one core at a time, so a few connections carry the same rate.

Watches are not counted: each holds its own connection for its lifetime and
never waits for a request slot, so a full set of slots cannot starve them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.client import Client

MAX_REQUESTS_IN_FLIGHT = 8


class NodeClient(Client):
    def __init__(self, server: str, *, max_requests: int = MAX_REQUESTS_IN_FLIGHT, **kw: Any) -> None:
        super().__init__(server, **kw)
        self._slots = asyncio.Semaphore(max_requests)

    async def request_bytes(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                            body: Any = None, content_type: str = "application/json") -> bytes:
        async with self._slots:
            return await super().request_bytes(method, path, query=query, body=body, content_type=content_type)
