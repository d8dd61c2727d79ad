"""Proxying an upgraded connection (SPDY or WebSocket) from one HTTP server to the next.

`kubectl exec`, `attach` and `port-forward` open an HTTP connection that is
upgraded to a multiplexed stream. As upstream, the API server passes it to the
pod's kubelet, and the kubelet to the runtime's streaming server (the URL a
CRI Exec/PortForward call returns). Neither hop needs to understand the framing:
after the 101 answer the bytes are copied both ways until one side closes.
aiohttp only upgrades WebSocket connections itself, so the handler takes over
the connection with the protocol's payload-parser hook, as aiohttp's own
WebSocket support does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from aiohttp import web

# Request headers that belong to one hop only, or that the next hop must not see.
_HOP_HEADERS = {"host", "authorization", "content-length", "transfer-encoding", "keep-alive", "proxy-connection",
                "impersonate-user", "impersonate-group"}


class _Feeder:
    """Stands in for aiohttp's payload parser: every byte from the client goes to the next hop."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if not self.writer.is_closing():
            self.writer.write(data)
        return False, b""

    def feed_eof(self) -> None:
        if not self.writer.is_closing() and self.writer.can_write_eof():
            with contextlib.suppress(OSError):
                self.writer.write_eof()


def _head(raw: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return status, headers


async def proxy_upgrade(request: web.Request, target: str, ssl_context: ssl.SSLContext | None = None,
                        path: str | None = None) -> web.StreamResponse:
    """Forward `request` to `target` (a URL) and, on 101, splice the two connections together."""
    url = urlsplit(target)
    port = url.port or (443 if url.scheme in ("https", "wss") else 80)
    reader, writer = await asyncio.open_connection(url.hostname, port,
                                                   ssl=ssl_context if url.scheme in ("https", "wss") else None)
    try:
        request_path = path or (url.path + (f"?{url.query}" if url.query else ""))
        lines = [f"{request.method} {request_path} HTTP/1.1", f"Host: {url.netloc}"]
        lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status, headers = _head(await reader.readuntil(b"\r\n\r\n"))
        if status != 101:
            length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
            body = await (reader.readexactly(length) if length is not None else reader.read())
            content_type = next((v for k, v in headers if k.lower() == "content-type"), "text/plain")
            return web.Response(status=status, body=body, headers={"Content-Type": content_type})
        response = web.StreamResponse(status=101)
        for name, value in headers:
            if name.lower() not in ("date", "server", "content-length"):
                response.headers.add(name, value)
        await response.prepare(request)
        transport = request.transport
        protocol = request.protocol
        if transport is None:
            return response
        protocol.set_parser(_Feeder(writer))  # type: ignore[arg-type]
        while True:
            chunk = await reader.read(65536)
            if not chunk or transport.is_closing():
                break
            transport.write(chunk)
        response.force_close()
        transport.close()
        return response
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
