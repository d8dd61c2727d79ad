"""Pod status rules, CRI log parsing and the atomic volume writer — without a runtime."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from agent import podstatus
from agent.logs import read_entries, select, stream
from agent.runtime import EXITED, RUNNING, Container, PodRuntime, Sandbox
from agent.volumes import atomic_write

Obj = dict[str, Any]


def container(name: str, state: str, *, exit_code: int = 0, restarts: int = 0, cid: str = "") -> Container:
    return Container(id=cid or f"{name}-{restarts}", sandbox_id="sb", name=name, attempt=restarts, state=state,
                     created_at=restarts + 1, started_at=1_700_000_000 * 10**9,
                     finished_at=1_700_000_100 * 10**9 if state == EXITED else 0, exit_code=exit_code,
                     restart_count=restarts)


def pod(policy: str = "Always", inits: int = 0) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a", "image": "i"}],
                     "initContainers": [{"name": f"i{k}", "image": "i"} for k in range(inits)]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}


def runtime(*containers: Container) -> PodRuntime:
    rt = PodRuntime("u", [Sandbox("sb", "u", "p", "ns", 0, True, 1, ip="10.244.1.2")])
    rt.containers = sorted(containers, key=lambda c: c.restart_count, reverse=True)
    return rt


def compute(p: Obj, rt: PodRuntime, view: podstatus.PodView | None = None) -> Obj:
    return podstatus.compute(p, rt, view or podstatus.PodView(), node_ip="10.0.0.1", termination_messages={})


def test_running_pod() -> None:
    status = compute(pod(), runtime(container("a", RUNNING)))
    assert status["phase"] == "Running" and status["podIP"] == "10.244.1.2"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True",
                          "Ready": "True", "PodScheduled": "True"}
    assert status["containerStatuses"][0]["ready"] is True


def test_crash_loop_shows_waiting_with_last_state() -> None:
    view = podstatus.PodView(waiting={"a": podstatus.Waiting("CrashLoopBackOff", "back-off 10s")})
    status = compute(pod(), runtime(container("a", EXITED, exit_code=2, restarts=1),
                                    container("a", EXITED, exit_code=2)), view)
    state = status["containerStatuses"][0]
    assert state["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    assert state["lastState"]["terminated"]["exitCode"] == 2 and state["restartCount"] == 1
    assert status["phase"] == "Running"


def test_terminal_phases() -> None:
    assert compute(pod("Never"), runtime(container("a", EXITED)))["phase"] == "Succeeded"
    assert compute(pod("Never"), runtime(container("a", EXITED, exit_code=1)))["phase"] == "Failed"
    assert compute(pod("OnFailure"), runtime(container("a", EXITED, exit_code=1)))["phase"] == "Running"
    done = compute(pod("Never"), runtime(container("a", EXITED)))
    ready = next(c for c in done["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"


def test_init_containers_gate_initialized() -> None:
    status = compute(pod(inits=2), runtime(container("i0", EXITED), container("i1", RUNNING)))
    assert status["phase"] == "Pending"
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False" and "[i1]" in initialized["message"]
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"


def test_cri_log_lines_partial_tail_and_follow(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"2024-01-01T00:00:00.000000001Z stdout P hel\n"
                    b"2024-01-01T00:00:00.5Z stdout F lo\n"
                    b"2024-01-01T00:00:01Z stderr F oops\n"
                    b"2024-01-01T00:00:02Z stdout F bye\n")
    entries = read_entries(log)
    assert [e.text for e in entries] == [b"hello\n", b"oops\n", b"bye\n"]
    assert [e.text for e in select(entries, tail_lines=1)] == [b"bye\n"]

    async def collect(**kw: Any) -> bytes:
        return b"".join([chunk async for chunk in stream(log, **kw)])

    assert asyncio.run(collect(timestamps=True, tail_lines=1)) == b"2024-01-01T00:00:02Z bye\n"
    assert asyncio.run(collect(limit_bytes=8)) == b"hello\noo"


def test_atomic_writer_swaps_whole_sets(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert atomic_write(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1" and (target / "dir" / "b").read_text() == "2"
    assert os.readlink(target / "a") == "..data/a"
    assert not atomic_write(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert atomic_write(target, {"a": (b"changed", 0o644)})
    assert (target / "a").read_text() == "changed" and not (target / "dir").exists()
    assert len([p for p in target.iterdir() if p.name.startswith("..") and p.is_dir()
                and not p.is_symlink()]) == 1
