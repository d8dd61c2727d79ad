"""Background processes of the lab: started detached, found again, stopped for good.

`pyk8s lab up` returns while the control plane, the agents and the proxies go
on running, so every process it starts is recorded (pid and start time, which
together survive pid reuse) and `lab down` — or the next `lab up` after a
crash — can stop exactly those and whatever they left behind (containerd
shims, container processes) without touching anything else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessRecord:
    label: str
    pid: int
    create_time: float

    def alive(self) -> psutil.Process | None:
        """The process if it still runs and is the one we started (not a reused pid)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProcessRecord:
        return cls(str(data["label"]), int(str(data["pid"])), float(str(data["create_time"])))


def spawn(label: str, argv: Sequence[str], log_file: Path, *, netns_path: str | None = None,
          env: dict[str, str] | None = None) -> ProcessRecord:
    """Start `argv` detached (own session), optionally inside a network namespace.

    `nsenter --net` is used rather than `ip netns exec`: the latter remounts /sys
    and hides the cgroup mounts that containerd needs (DESIGN.md §4).
    """
    if netns_path:
        argv = ["nsenter", f"--net={netns_path}", "--", *argv]
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)  # logs may name secrets
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **(env or {})})
    return ProcessRecord(label, proc.pid, psutil.Process(proc.pid).create_time())


def stop(records: Iterable[ProcessRecord], grace: float = 15.0) -> None:
    """SIGTERM each live recorded process (and its session), SIGKILL what remains after `grace`."""
    procs: list[psutil.Process] = []
    for record in records:
        proc = record.alive()
        if proc is None:
            continue
        with contextlib.suppress(psutil.Error):
            procs.extend(proc.children(recursive=True))
        procs.append(proc)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, still = psutil.wait_procs(procs, timeout=grace)
    kill_all(still)


def kill_all(procs: Iterable[psutil.Process], timeout: float = 5.0) -> None:
    procs = list(procs)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=timeout)


def processes_mentioning(marker: str) -> list[psutil.Process]:
    """Processes whose command line contains `marker` (a lab's data directory).

    Never this process or its ancestors: `make up` and the shell around it name the
    data directory too, and a cleanup must not kill its own caller.
    """
    me = psutil.Process()
    spared = {me.pid} | {p.pid for p in me.parents()}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.pid not in spared and any(marker in part for part in cmdline):
            found.append(proc)
    return found


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
