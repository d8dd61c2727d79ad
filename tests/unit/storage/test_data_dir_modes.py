"""No other local user can read the store, its WAL, the keys, tokens or kubeconfigs.

Each file is created with its final mode (checked under `umask(0)` and with
`chmod` forbidden, so a write-then-chmod would fail the test), and data dirs made
loose by earlier versions are tightened at start-up.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane import privatefiles
from controlplane.apiserver import certs
from controlplane.apiserver.authn import load_or_make_static_tokens
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.apiserver.tokens import ensure_signing_key
from controlplane.client.certs import make_ca, write_key
from controlplane.cmd import preflight
from controlplane.storage.sqlite import SQLiteStore


def readable_by_others(root: Path) -> list[str]:
    """Every file or directory below `root` (and `root`) with a group or other permission bit."""
    loose = []
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            loose.append(f"{path} {stat.filemode(st.st_mode)}")
    return loose


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any chmod of a path: files must be created with their mode, not fixed after."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"chmod after creation: {args}")
    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)


async def test_store_files_are_private_from_creation(tmp_path: Path, open_umask: None, no_chmod: None) -> None:
    store = SQLiteStore(tmp_path / "data" / "state.db")
    await store.start()
    try:
        await store.create("/registry/secrets/default/s", b'{"data": {"password": "aHVudGVyMg=="}}')
        names = sorted(p.name for p in (tmp_path / "data").iterdir())
        assert {"state.db", "state.db-wal", "state.db-shm"} <= set(names)
        assert readable_by_others(tmp_path / "data") == []
    finally:
        await store.close()


async def test_a_loose_store_is_tightened_at_start(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    await store.create("/registry/secrets/default/s", b"{}")
    await store.close()
    _loosen(tmp_path)
    store = SQLiteStore(tmp_path / "state.db")
    await store.start()
    try:
        await store.create("/registry/secrets/default/t", b"{}")
        assert [p for p in readable_by_others(tmp_path) if not p.startswith(f"{tmp_path} ")] == []
    finally:
        await store.close()


def _loosen(directory: Path) -> None:
    """What an earlier version left: the database and its WAL readable by everyone."""
    for path in directory.iterdir():
        path.chmod(0o644)
    (directory / "state.db-wal").touch(mode=0o644)
    (directory / "state.db-wal").chmod(0o644)


def test_keys_tokens_and_pki_are_created_private(tmp_path: Path, open_umask: None, no_chmod: None) -> None:
    pki = certs.ensure_pki(tmp_path / "pki", "127.0.0.1", "10.96.0.1")
    ensure_signing_key(tmp_path / "pki" / "sa.key")
    load_or_make_static_tokens(tmp_path / "tokens.csv")
    write_key(tmp_path / "other.key", make_ca("x")[1])
    privatefiles.write_private(tmp_path / "admin.kubeconfig", "token: secret\n")
    assert pki.ca_key.exists() and pki.serving_key.exists() and pki.kubelet_client_key.exists()
    assert [p for p in readable_by_others(tmp_path) if not p.startswith(f"{tmp_path} ")] == []


def test_write_private_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    target.chmod(0o644)
    privatefiles.write_private(target, b"new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


async def test_server_data_dir_is_private_and_earlier_loose_files_are_fixed(tmp_path: Path) -> None:
    data = tmp_path / "server"
    (data / "pki").mkdir(parents=True)
    data.chmod(0o755)
    (data / "pki").chmod(0o755)
    (data / "tokens.csv").write_text('tok-123,admin,admin,"system:masters"\n')
    (data / "tokens.csv").chmod(0o644)
    (data / "agent").mkdir(mode=0o755)  # the all-in-one agent's: its volumes keep their own modes
    (data / "agent" / "volume-file").write_text("x")
    (data / "agent" / "volume-file").chmod(0o644)
    old = os.umask(0)
    server = APIServer(APIServerConfig(data_dir=data, secure_port=0))
    try:
        await server.start()
        await server.stop()
    finally:
        os.umask(old)
    loose = readable_by_others(data)
    assert loose == [f"{data / 'agent'} drwxr-xr-x", f"{data / 'agent' / 'volume-file'} -rw-r--r--"], loose
    assert {"state.db", "admin.kubeconfig", "tokens.csv", "pki"} <= {p.name for p in data.iterdir()}


def _apiserver(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyk8s.cli", "apiserver", *args], capture_output=True, text=True,
                          timeout=60)


def test_a_data_dir_in_use_or_a_taken_port_is_refused_in_one_line(tmp_path: Path) -> None:
    preflight.lock_data_dir("server", tmp_path / "held")  # this process plays the running server
    try:
        result = _apiserver("--data-dir", str(tmp_path / "held"), "--secure-port", "0")
    finally:
        preflight.release_locks()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"pyk8s apiserver: data dir {tmp_path / 'held'} is in use by a running pyk8s "
                                     f"(pid {os.getpid()}); stop it or choose another --data-dir")
    assert not (tmp_path / "held" / "state.db").exists()  # refused before anything was opened
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = _apiserver("--data-dir", str(tmp_path / "free"), "--secure-port", str(port))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"pyk8s apiserver: port {port} on 127.0.0.1 is in use by pid {os.getpid()}" in result.stderr
    result = _apiserver("--data-dir", str(tmp_path / "x"), "--service-cidr", "10.96.0.1/12")
    assert result.returncode == 2 and "argument --service-cidr" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
