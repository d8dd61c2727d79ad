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

ROOT = Path(__file__).resolve().parents[1]
# The project's own kubectl: scripts/install-kubectl.sh (run by `make test`) builds the versions that
# tools/kubectl/versions.txt pins and links them into .venv/bin. A kubectl elsewhere on this machine is
# never used, so a run here behaves as on a fresh machine, where there is none.
KUBECTL_BIN = ROOT / ".venv" / "bin"
KUBECTL_VERSIONS = ROOT / "tools" / "kubectl" / "versions.txt"
# Put it first on PATH for every subprocess the tests start (the lab, scripts, `kubectl` by name).
os.environ["PATH"] = f"{KUBECTL_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def _pinned_kubectl_minors() -> tuple[list[str], str]:
    """(every pinned minor as `1.N`, the default one) from tools/kubectl/versions.txt."""
    minors, default = [], ""
    for line in KUBECTL_VERSIONS.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        minors.append(fields[0])
        if fields[2:3] == ["default"]:
            default = fields[0]
    return minors, default


KUBECTL_MINORS, DEFAULT_KUBECTL_MINOR = _pinned_kubectl_minors()


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


def kubectl_binary(minor: str | None = None) -> str:
    """The project's kubectl (the default one, or `1.N`); a test that needs it fails, never skips,
    when it is not installed."""
    path = KUBECTL_BIN / ("kubectl" if minor is None else f"kubectl-{minor}")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not installed: scripts/install-kubectl.sh builds it (`make test` runs it)",
                    pytrace=False)
    return str(path)


def kubectl(kubeconfig: Path, *args: str, binary: str | None = None, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    result = subprocess.run([binary or kubectl_binary(), *args], capture_output=True, text=True, input=input,
                            env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result
