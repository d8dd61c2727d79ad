"""The agent's private containerd: generated config, started, restarted when killed, stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.containerd import ContainerdPaths, ContainerdSupervisor, render_config
from agent.mounts import unmount_below
from tests.helpers import eventually

pytestmark = [
    pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd needs root"),
]


def ctr_version(paths: ContainerdPaths) -> str:
    result = subprocess.run(["ctr", "--address", str(paths.socket), "version"], capture_output=True, text=True,
                            timeout=20)
    return result.stdout if result.returncode == 0 else ""


@pytest.fixture
async def supervisor() -> AsyncIterator[ContainerdSupervisor]:
    base = Path(tempfile.mkdtemp(prefix="pyk8s-ctd-", dir="/tmp"))  # unix socket paths must stay short
    paths = ContainerdPaths(base)
    sup = ContainerdSupervisor(paths, render_config(paths, registry_mirrors={"pyk8s.local": "http://127.0.0.1:5000"}))
    try:
        await sup.start()
        yield sup
    finally:
        await sup.stop()
        await asyncio.to_thread(unmount_below, base)
        shutil.rmtree(base, ignore_errors=True)


def test_config_has_the_settings_this_platform_needs() -> None:
    paths = ContainerdPaths(Path("/x"))
    text = render_config(paths, registry_mirrors={"pyk8s.local": "http://10.99.0.1:5000"})
    assert "restrict_oom_score_adj = true" in text
    assert 'sandbox_image = "pyk8s.local/pause:1"' in text
    assert '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."pyk8s.local"]' in text
    assert 'endpoint = ["http://10.99.0.1:5000"]' in text
    assert 'address = "/x/containerd.sock"' in text and 'conf_dir = "/x/cni/net.d"' in text


async def test_starts_answers_and_is_restarted_after_a_kill(supervisor: ContainerdSupervisor) -> None:
    assert "Server:" in await asyncio.to_thread(ctr_version, supervisor.paths)
    first_pid = supervisor.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    await eventually(lambda: supervisor.restarts == 1 and supervisor.pid != first_pid, timeout=30)
    await eventually(lambda: asyncio.to_thread(lambda: "Server:" in ctr_version(supervisor.paths)), timeout=30)
    assert "Server:" in await asyncio.to_thread(ctr_version, supervisor.paths)
