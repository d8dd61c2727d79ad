"""/healthz and /metrics over HTTP, as upstream serves them on :10256 and :10249.

/healthz answers 200 with {"lastUpdated", "currentTime", "nodeName"} while the
last successful sync is recent: the proxy is unhealthy (503) when a sync was
queued and none succeeded within twice the sync period (upstream's rule), or
before the first sync.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


class HealthState:
    def __init__(self, node_name: str, sync_period: float) -> None:
        self.node_name = node_name
        self.timeout = 2 * sync_period
        self.last_updated = 0.0  # last successful sync (wall clock)
        self.oldest_queued = 0.0  # first change queued since the last successful sync

    def queued(self) -> None:
        if not self.oldest_queued:
            self.oldest_queued = time.time()

    def updated(self) -> None:
        self.last_updated = time.time()
        self.oldest_queued = 0.0

    def healthy(self, now: float | None = None) -> bool:
        now = now or time.time()
        if not self.last_updated:
            return False
        return not (self.oldest_queued and now - self.oldest_queued > self.timeout)

    def body(self) -> dict[str, str]:
        now = time.time()
        return {"lastUpdated": _rfc3339(self.last_updated or now), "currentTime": _rfc3339(now),
                "nodeName": self.node_name}


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class HTTPServers:
    """Runs the healthz and metrics listeners (either may be disabled with an empty address)."""

    def __init__(self, health: HealthState, metrics_text: Callable[[], str]) -> None:
        self.health = health
        self.metrics_text = metrics_text
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response(self.health.body(), status=200 if self.health.healthy() else 503)

    async def _livez(self, _: web.Request) -> web.Response:
        return web.json_response(self.health.body())

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(text=self.metrics_text(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def start(self, healthz_address: str, metrics_address: str) -> None:
        if healthz_address:
            app = web.Application()
            app.router.add_get("/healthz", self._healthz)
            app.router.add_get("/livez", self._livez)
            await self._serve("healthz", app, healthz_address)
        if metrics_address:
            app = web.Application()
            app.router.add_get("/metrics", self._metrics)
            app.router.add_get("/healthz", self._livez)
            await self._serve("metrics", app, metrics_address)

    async def _serve(self, name: str, app: web.Application, address: str) -> None:
        host, port = _split(address)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:  # as upstream: a busy port costs the endpoint, not the proxy
            log.error("cannot serve %s on %s: %s", name, address, exc)
            await runner.cleanup()
            return
        self._runners.append(runner)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.ports[name] = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
