"""Liveness, readiness and startup probes: exec, httpGet and tcpSocket, with upstream semantics.

One asyncio task per probe of each running container instance. Results pass
through the success/failure thresholds before they count: readiness starts
failed and feeds the Ready conditions, liveness starts successful and a
failure makes the worker restart the container, a startup probe holds the other
two back until it has succeeded once. A new container instance (restart) gets
new probe tasks, so old results never leak into a new container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
Obj = dict[str, Any]
USER_AGENT = "kube-probe/1.31"
ExecFn = Callable[[str, list[str], int], Awaitable[tuple[int, bytes, bytes]]]


@dataclass
class ProbeOutcome:
    success: bool
    message: str = ""


def resolve_port(port: Any, container: Obj) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} is not a number and not a named port of the container")


class Prober:
    """Runs one probe action once."""

    def __init__(self, exec_sync: ExecFn) -> None:
        self.exec_sync = exec_sync
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, force_close=True))
        return self._http

    async def run(self, probe: Obj, container: Obj, container_id: str, pod_ip: str) -> ProbeOutcome:
        timeout = int(probe.get("timeoutSeconds", 1))
        try:
            if "exec" in probe:
                command = list((probe["exec"] or {}).get("command") or [])
                code, out, err = await self.exec_sync(container_id, command, timeout)
                text = (out + err).decode(errors="replace").strip()
                return ProbeOutcome(code == 0, text if code == 0 else
                                    f"command {command!r} exited with {code}: {text}")
            if "httpGet" in probe:
                return await self._http_get(probe["httpGet"], container, pod_ip, timeout)
            if "tcpSocket" in probe:
                spec = probe["tcpSocket"]
                host = spec.get("host") or pod_ip
                port = resolve_port(spec.get("port"), container)
                _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return ProbeOutcome(True)
            return ProbeOutcome(False, "probe has no supported handler (exec, httpGet, tcpSocket)")
        except TimeoutError:
            return ProbeOutcome(False, f"probe timed out after {timeout}s")
        except (OSError, ValueError, aiohttp.ClientError) as exc:
            return ProbeOutcome(False, str(exc) or type(exc).__name__)
        except Exception as exc:  # a runtime error (container gone) is a probe failure, not a crash
            return ProbeOutcome(False, str(exc))

    async def _http_get(self, spec: Obj, container: Obj, pod_ip: str, timeout: int) -> ProbeOutcome:
        scheme = str(spec.get("scheme", "HTTP")).lower()
        host = spec.get("host") or pod_ip
        port = resolve_port(spec.get("port"), container)
        path = spec.get("path", "/")
        if not path.startswith("/"):
            path = "/" + path
        url = f"{scheme}://{host}:{port}{path}"
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        for header in spec.get("httpHeaders") or []:
            headers[header["name"]] = header.get("value", "")
        async with self._session().get(url, headers=headers, allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = (await response.content.read(10 * 1024)).decode(errors="replace")
            if 200 <= response.status < 400:
                return ProbeOutcome(True, body)
            return ProbeOutcome(False, f"HTTP probe failed with statuscode: {response.status}")


@dataclass
class ProbeState:
    """The thresholded result of one probe of one container instance."""

    kind: str  # liveness | readiness | startup
    result: bool
    last_message: str = ""
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    gave_up: bool = False  # failures reached the threshold


@dataclass
class ContainerProbes:
    """The probe tasks of one container instance and their current results."""

    container_id: str
    states: dict[str, ProbeState] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ready(self) -> bool:
        readiness = self.states.get("readiness")
        return self.is_started and (readiness is None or readiness.result)

    @property
    def is_started(self) -> bool:
        startup = self.states.get("startup")
        return startup is None or startup.result

    @property
    def live(self) -> bool:
        """False once liveness failed past its threshold, or startup did before it ever succeeded."""
        liveness = self.states.get("liveness")
        startup = self.states.get("startup")
        if startup is not None and not startup.result and startup.gave_up:
            return False
        return liveness is None or liveness.result

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


Notify = Callable[[str, ProbeState, bool], None]  # (kind, state, changed)


def start_probes(prober: Prober, container: Obj, container_id: str, pod_ip: Callable[[], str],
                 notify: Notify) -> ContainerProbes:
    """Start the container's probes; `notify` hears every result change (and every failure of liveness)."""
    probes = ContainerProbes(container_id)
    specs = {kind: container.get(f"{kind}Probe") for kind in ("startup", "liveness", "readiness")}
    if not specs["startup"]:
        probes.started.set()
    for kind, spec in specs.items():
        if not spec:
            continue
        state = ProbeState(kind, result=(kind == "liveness"))
        probes.states[kind] = state
        probes.tasks.append(asyncio.create_task(
            _probe_loop(prober, kind, spec, container, probes, state, pod_ip, notify),
            name=f"probe-{kind}-{container.get('name')}"))
    return probes


async def _probe_loop(prober: Prober, kind: str, spec: Obj, container: Obj, probes: ContainerProbes,
                      state: ProbeState, pod_ip: Callable[[], str], notify: Notify) -> None:
    period = max(int(spec.get("periodSeconds", 10)), 1)
    success_threshold = max(int(spec.get("successThreshold", 1)), 1)
    failure_threshold = max(int(spec.get("failureThreshold", 3)), 1)
    if kind != "startup":
        await probes.started.wait()
    await asyncio.sleep(int(spec.get("initialDelaySeconds", 0)))
    while True:
        outcome = await prober.run(spec, container, probes.container_id, pod_ip())
        before = state.result
        state.last_message = outcome.message
        if outcome.success:
            state.consecutive_successes += 1
            state.consecutive_failures = 0
            if state.consecutive_successes >= success_threshold:
                state.result = True
                state.gave_up = False
        else:
            state.consecutive_failures += 1
            state.consecutive_successes = 0
            if state.consecutive_failures >= failure_threshold:
                state.result = False
                state.gave_up = True
        changed = before != state.result or (kind == "startup" and state.gave_up)
        if changed or not outcome.success:
            notify(kind, state, changed)
        if kind == "startup" and state.result:
            probes.started.set()
            return  # a startup probe stops once it has succeeded
        await asyncio.sleep(period)
