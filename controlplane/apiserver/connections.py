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

- TLS handshakes: `ssl_handshake_timeout` of `loop.connect_accepted_socket`
  (asyncio's own), and the same time for a new connection's first bytes.
- Pending connections (accepted, no complete request headers yet — the stage
  where a client is not authenticated): at most `max_pending_connections`;
  beyond that a new connection is closed on accept, before any TLS state is
  allocated; and TLS state is allocated only once the client has sent its
  first bytes (see `TLSListener`).
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
import gc
import logging
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

from controlplane import heap
from controlplane.api import errors

log = logging.getLogger(__name__)
FAILED_HANDSHAKES_PER_COLLECT = 64


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
        heap.TRIMMER.soon()  # its TLS buffers (~300 KB) are free now

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


class TLSListener:
    """An HTTPS listener for an aiohttp server with the limits above.

    Connections are accepted by hand (`loop.sock_accept`) so that nothing but a socket and a timer exists
    for a connection until its client sends its first bytes (the ClientHello): only then is TLS started,
    with `loop.connect_accepted_socket(..., ssl=...)` — asyncio allocates ~300 KB of TLS state per
    connection, and a flood of connections that never speak TLS must not get it. A connection silent for
    `handshake_timeout` is closed; the handshake itself has `handshake_timeout` too."""

    def __init__(self, server: web.Server, ssl_context: ssl.SSLContext, limits: ConnectionLimits) -> None:
        self.server = server
        self.ssl_context = ssl_context
        self.limits = limits
        self.gate = _Gate(limits.max_pending_connections)
        self.tasks: set[asyncio.Task[None]] = set()
        self._silent: dict[int, tuple[socket.socket, asyncio.TimerHandle]] = {}  # fd -> before any byte came
        self._socket: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._failures = 0
        self._collect: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int) -> int:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=self.limits.backlog)
        sock.setblocking(False)
        self._socket = sock
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop(sock))
        return int(sock.getsockname()[1])

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:  # out of file descriptors, most likely: let some close first
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            if not self.gate.admit():
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, no wait
                conn.close()
                continue
            conn.setblocking(False)
            fd = conn.fileno()
            timer = loop.call_later(self.limits.handshake_timeout, self._drop_silent, fd)
            self._silent[fd] = (conn, timer)
            loop.add_reader(fd, self._first_bytes, fd)

    def _drop_silent(self, fd: int) -> None:
        conn, _ = self._silent.pop(fd)
        asyncio.get_running_loop().remove_reader(fd)
        conn.close()
        self.gate.release()

    def _first_bytes(self, fd: int) -> None:
        conn, timer = self._silent[fd]
        try:
            peeked = conn.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return  # woken without data: keep waiting
        except OSError:
            peeked = b""
        if not peeked:  # closed (or reset) before saying anything: no TLS state for it at all
            timer.cancel()
            self._drop_silent(fd)
            return
        del self._silent[fd]
        timer.cancel()
        asyncio.get_running_loop().remove_reader(fd)
        task = asyncio.get_running_loop().create_task(self._serve(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        handler = HardenedRequestHandler(self.server, self.gate, loop=loop,
                                         keepalive_timeout=self.limits.header_timeout,
                                         max_line_size=self.limits.max_line_size,
                                         max_field_size=self.limits.max_field_size,
                                         access_log=None)
        try:
            await loop.connect_accepted_socket(lambda: handler, conn, ssl=self.ssl_context,
                                               ssl_handshake_timeout=self.limits.handshake_timeout)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, asyncio.CancelledError):
            handler.release()  # the handshake failed or timed out; asyncio has closed the socket
            conn.close()
            self._failed_handshake()

    def _failed_handshake(self) -> None:
        """A failed handshake leaves asyncio's TLS state (~300 KB) in reference cycles that only a full
        collection frees — rare in a process that froze its start-up heap and collects lazily — so a flood
        of unfinished handshakes grew RSS by ~150 MB per wave of 512. Once `FAILED_HANDSHAKES_PER_COLLECT`
        have failed, one full collection runs a second later (after the rest of a burst has failed too)."""
        self._failures += 1
        if self._failures >= FAILED_HANDSHAKES_PER_COLLECT and self._collect is None:
            self._collect = asyncio.get_running_loop().call_later(1.0, self._collect_cycles)

    def _collect_cycles(self) -> None:
        self._failures, self._collect = 0, None
        gc.collect()
        heap.TRIMMER.soon()

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
            self._accepting = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for fd in list(self._silent):
            self._silent[fd][1].cancel()
            self._drop_silent(fd)
        if self._collect is not None:
            self._collect.cancel()
            self._collect = None
        heap.TRIMMER.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
