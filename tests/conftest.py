"""Shared fixtures: a real API server on a free loopback port, and a kubectl runner."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.apiserver.server import APIServer, APIServerConfig

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")


@pytest.fixture
async def api_server(tmp_path: Path) -> AsyncIterator[APIServer]:
    server = APIServer(APIServerConfig(data_dir=tmp_path / "server", secure_port=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def kubeconfig(api_server: APIServer) -> Path:
    return api_server.admin_kubeconfig


def kubectl_binaries() -> list[str]:
    """The default kubectl plus every bundled minor version found on this machine."""
    found = ["kubectl"] if subprocess.run(["which", "kubectl"], capture_output=True).returncode == 0 else []
    found += sorted(str(p) for p in KUBECTL_DIR.glob("kubectl.1.*")) if KUBECTL_DIR.is_dir() else []
    return found


def kubectl(kubeconfig: Path, *args: str, binary: str = "kubectl", input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    result = subprocess.run([binary, *args], capture_output=True, text=True, input=input, env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result
