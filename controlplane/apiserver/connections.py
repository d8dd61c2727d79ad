"""The HTTPS listener's connection layer: bounded handshakes, headers, bodies and pending connections.

Why this module exists: with aiohttp's defaults a connection that never
finished its TLS handshake held ~300 KB for asyncio's 60 s handshake timeout
(8 waves of 1,000 such connections took the server from 252 MB to 1.4 GB),
a connection trickling its headers or body stayed open for minutes, and
aiohttp's answers to malformed requests were plain text that echoed the bad
header line — a folded `Authorization` header put the admin token into the
log and the response body.

What is bounded, and by which knob (all in `ConnectionLimits`, from
`APIServerConfig` and the `pyk8s apiserver`/`server` flags):

- TLS handshakes: `ssl_handshake_timeout` of `loop.start_tls` (asyncio's own).
- Pending connections (accepted, no complete request headers yet — the stage
  where a client is not authenticated): at most `max_pending_connections`;
  beyond that a new connection is closed on accept, before any TLS state is
  allocated. TLS is therefore started per connection with `loop.start_tls`
  after the count is checked, rather than by `create_server(ssl=...)`.
- Request headers: aiohttp's `keepalive_timeout` closes a connection whose
  handler is waiting for a request (idle, or headers still arriving) — on a
  new connection it starts at accept — so it is the header timeout
  (upstream's kube-apiserver: ~32 s ReadHeaderTimeout). Header line and
  field sizes: aiohttp's `max_line_size` / `max_field_size`.
- Request bodies: `handlers.BODY_TIMEOUT` (upstream's 60 s request timeout).

Malformed requests that aiohttp refuses before our handlers run get a
`kind: Status` body with a fixed message that never repeats what was sent, and
are logged at debug level by class name only (no traceback per request).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

from controlplane.api import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    handshake_timeout: float = 10.0  # seconds for a TLS handshake
    header_timeout: float = 30.0  # seconds for request headers, and for an idle keep-alive connection
    body_timeout: float = 60.0  # seconds for a whole request body
    max_pending_connections: int = 512  # accepted connections without complete request headers yet
    max_line_size: int = 8190  # bytes of the request line and of one header line
    max_field_size: int = 8190  # bytes of one header field
    backlog: int = 1024  # the listening socket's accept queue


def _status_body(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps(errors.StatusError(code, reason, message).to_status())


class _Gate:
    """Counts pending connections; one is pending from accept until its first request's headers parse."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self.refused = 0

    def admit(self) -> bool:
        if self.pending >= self.limit:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("refused %d connections: %d are pending (limit %d)", self.refused, self.pending,
                            self.limit)
            return False
        self.pending += 1
        return True

    def release(self) -> None:
        self.pending -= 1


class HardenedRequestHandler(RequestHandler):
    """aiohttp's request handler, releasing its pending slot at the first request and answering malformed
    requests with a Status object that does not echo them."""

    def __init__(self, manager: web.Server, gate: _Gate, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._gate: _Gate | None = gate

    def release(self) -> None:
        """Give back the pending slot, once (the first request parsed, the handshake failed or the
        connection closed, whichever comes first)."""
        if self._gate is not None:
            self._gate.release()
            self._gate = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._gate is not None and self._request_count > 0:
            self.release()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.release()
        super().connection_lost(exc)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status == 500:
            return super().handle_error(request, status, exc, message)
        log.debug("refused a malformed request: %s", type(exc).__name__ if exc else status)
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        if isinstance(exc, LineTooLong):
            text = "Request Header Fields Too Large"
        elif isinstance(exc, BadHttpMethod):
            text = "the request's method is not valid"
        elif status == 504:
            text = "Timeout: request did not complete within the allotted timeout"
        else:
            text = "the request could not be parsed as HTTP"
        reason = {400: "BadRequest", 413: "RequestEntityTooLarge", 504: "Timeout"}.get(status, "BadRequest")
        response = web.Response(status=status, body=_status_body(status, reason, text),
                                content_type="application/json")
        response.force_close()
        return response


class _TLSAdmission(asyncio.Protocol):
    """The protocol of a just-accepted connection: admitted (then upgraded to TLS and handed to aiohttp) or
    closed at once when too many connections are pending."""

    def __init__(self, listener: TLSListener) -> None:
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._listener.gate.admit():
            transport.abort()
            return
        transport.pause_reading()  # nothing is read until start_tls owns the transport
        task = asyncio.get_running_loop().create_task(self._listener.upgrade(transport))
        self._listener.tasks.add(task)
        task.add_done_callback(self._listener.tasks.discard)


class TLSListener:
    """An HTTPS listener for an aiohttp server with the limits above."""

    def __init__(self, server: web.Server, ssl_context: ssl.SSLContext, limits: ConnectionLimits) -> None:
        self.server = server
        self.ssl_context = ssl_context
        self.limits = limits
        self.gate = _Gate(limits.max_pending_connections)
        self.tasks: set[asyncio.Task[None]] = set()
        self._listening: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._listening = await loop.create_server(lambda: _TLSAdmission(self), host, port,
                                                   backlog=self.limits.backlog, reuse_address=True)
        return int(self._listening.sockets[0].getsockname()[1])

    async def upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        handler = HardenedRequestHandler(self.server, self.gate, loop=loop,
                                         keepalive_timeout=self.limits.header_timeout,
                                         max_line_size=self.limits.max_line_size,
                                         max_field_size=self.limits.max_field_size,
                                         access_log=None)
        try:
            tls = await loop.start_tls(transport, handler, self.ssl_context, server_side=True,
                                       ssl_handshake_timeout=self.limits.handshake_timeout)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, asyncio.CancelledError):
            handler.release()
            transport.abort()
            return
        if tls is None:  # the transport closed during the handshake
            handler.release()
            return
        handler.connection_made(tls)

    async def stop(self) -> None:
        if self._listening is not None:
            self._listening.close()
            await self._listening.wait_closed()
            self._listening = None
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
