"""Shared fixtures: a real API server on a free loopback port, a real etcd, and a kubectl runner."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from controlplane.apiserver.server import APIServer, APIServerConfig

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_etcd() -> tuple[subprocess.Popen[bytes], str, str]:
    data = tempfile.mkdtemp(prefix="pyk8s-etcd-")
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen([
        "etcd", "--data-dir", data, "--listen-client-urls", url, "--advertise-client-urls", url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
        f"http://127.0.0.1:{peer}", "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url, data
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("etcd did not start")


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[str]:
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (Debian package etcd-server)")
    proc, url, data = _start_etcd()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)



@pytest.fixture
def clean_etcd(etcd_server: str) -> str:
    """The session's etcd, emptied for this test."""
    subprocess.run(["etcdctl", "--endpoints", etcd_server, "del", "", "--from-key"], capture_output=True,
                   check=True, env={"ETCDCTL_API": "3"})
    return etcd_server


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
