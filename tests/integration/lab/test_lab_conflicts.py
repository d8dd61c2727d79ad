"""`pyk8s lab` refuses what conflicts with a running lab, in one line, and leaves that lab untouched.

A one-node lab runs; a second `lab up` of the same name from another data dir,
and a `lab down` of that name from the wrong data dir, must each end with one
line on stderr and a non-zero status — no traceback, the running lab's bridge,
nodes and API server as they were. The running lab's files are private to root
and its logs hold no credentials. Everything is removed afterwards, also when
the test fails.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import cluster, network
from lab.cluster import LabState


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, containerd)"
    for tool in ("containerd", "runc", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup-platform.sh installs it)"
    return None


def pyk8s(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyk8s.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def running_lab() -> Iterator[LabState]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    name = "c" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=4))
    data_dir = Path(f"/tmp/pyk8s-conflict-{name}")
    other = Path(f"/tmp/pyk8s-conflict-{name}-other")
    try:
        yield cluster.up(data_dir, 1, name=name, subnet=network.free_subnet("10.94"), timeout=180)
    finally:
        for directory in (other, data_dir):  # the second one's leftovers first, if the refusal failed
            if (directory / cluster.STATE_FILE).exists():
                cluster.down(directory, name=name)
        cluster.down(data_dir, name=name)
        assert not network.lab_exists(network.LabNetwork(name=name))
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(other, ignore_errors=True)


def _assert_one_line_refusal(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def _lab_is_intact(state: LabState) -> None:
    status = pyk8s("lab", "status", "--data-dir", str(state.data_dir))
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["running"] and body["nodes_ready"] == 1, body
    assert set(body["processes"].values()) == {"running"}, body
    assert network.lab_exists(state.net)


def test_a_second_lab_of_the_same_name_is_refused_and_the_first_keeps_running(running_lab: LabState) -> None:
    name, data_dir = running_lab.net.name, running_lab.data_dir
    other = Path(f"{data_dir}-other")
    result = pyk8s("lab", "up", "--nodes", "1", "--name", name, "--data-dir", str(other), "--timeout", "60")
    _assert_one_line_refusal(result, f"pyk8s lab up: lab {name!r} is already running from {data_dir}",
                             "pyk8s lab down --data-dir")
    assert not (other / cluster.STATE_FILE).exists()
    _lab_is_intact(running_lab)

    result = pyk8s("lab", "down", "--name", name, "--data-dir", str(other))
    _assert_one_line_refusal(result, f"pyk8s lab down: lab {name!r} runs from {data_dir}")
    _lab_is_intact(running_lab)

    result = pyk8s("lab", "up", "--nodes", "1", "--name", "x" + name[1:], "--subnet", running_lab.net.subnet,
                   "--data-dir", str(other), "--timeout", "60")
    _assert_one_line_refusal(result, f"pyk8s lab up: lab subnet {running_lab.net.subnet} overlaps the host's route",
                             "choose another --subnet")
    assert not network.lab_exists(network.LabNetwork(name="x" + name[1:]))
    assert not (cluster.OWNERS_DIR / f"x{name[1:]}.lock").exists()  # nothing of the refused lab left in /run
    _lab_is_intact(running_lab)

    result = pyk8s("lab", "exec", "--data-dir", str(other), "node1", "--", "true")
    _assert_one_line_refusal(result, "pyk8s lab exec: no lab runs from")
    result = pyk8s("lab", "up", "--nodes", "0", "--data-dir", str(other))
    _assert_one_line_refusal(result, "--nodes", "at least 1")


def test_the_running_labs_files_are_private_and_its_logs_hold_no_credentials(running_lab: LabState) -> None:
    data_dir = running_lab.data_dir
    node_dir = data_dir / "nodes" / "node1"
    # The agent's own tree below its (0700) dir keeps the modes pods and containerd need; the rest is root's.
    checked = [data_dir, node_dir, *(p for p in data_dir.rglob("*") if node_dir not in p.parents),
               *(node_dir / "pki").iterdir()]
    loose = [f"{p} {stat.filemode(p.lstat().st_mode)}" for p in checked
             if not p.is_symlink() and p.lstat().st_mode & 0o077]
    assert loose == []
    token = (data_dir / "control-plane" / "tokens.csv").read_text().split(",")[0]
    assert len(token) > 20
    for log in (data_dir / "logs").iterdir():
        text = log.read_text(errors="replace")
        assert token not in text and "PRIVATE KEY" not in text, log
