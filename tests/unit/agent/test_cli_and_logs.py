"""`pyk8s agent` refuses what cannot work in one line, and no credential reaches its logs or stderr.

The refusals happen before the agent starts anything (no containerd, no root
needed): a kubeconfig that is missing or not YAML (its content never quoted),
a data dir another agent holds, a port something else listens on, bad flag
values. Log records are formatted through the redactor, so an exception whose
repr carries the Authorization header, or a PEM key, is masked.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from controlplane.cmd import preflight
from pyk8s.redact import RedactingFormatter, redact

TOKEN = "s3cr3t-t0ken-abcdefghijklmnopqrstuvwxyz"


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyk8s.cli", "agent", *args], capture_output=True, text=True,
                          timeout=60)


def kubeconfig(path: Path) -> Path:
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                    "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
                    f"users: [{{name: u, user: {{token: {TOKEN}}}}}]\n")
    return path


def one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_unusable_kubeconfigs_are_refused_without_quoting_them(tmp_path: Path) -> None:
    one_line(agent("--kubeconfig", str(tmp_path / "missing"), "--data-dir", str(tmp_path / "d")),
             "pyk8s agent: cannot read kubeconfig", "No such file")
    broken = tmp_path / "broken"
    broken.write_text(f"users:\n  - user: {{token: {TOKEN}\n  bad: [\n")
    one_line(agent("--kubeconfig", str(broken), "--data-dir", str(tmp_path / "d")),
             f"pyk8s agent: kubeconfig {broken} is not valid YAML")
    empty = tmp_path / "empty"
    empty.write_text(f"token: {TOKEN}\n")
    one_line(agent("--kubeconfig", str(empty), "--data-dir", str(tmp_path / "d")), "names no cluster and context")
    wrong = kubeconfig(tmp_path / "wrong")
    wrong.write_text(wrong.read_text().replace("current-context: c", "current-context: other"))
    one_line(agent("--kubeconfig", str(wrong), "--data-dir", str(tmp_path / "d")),
             "current-context 'other' is not among its contexts")


def test_a_data_dir_in_use_and_a_port_in_use_are_refused(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "kubeconfig")
    preflight.lock_data_dir("agent", tmp_path / "held")  # this process plays the running agent
    try:
        one_line(agent("--kubeconfig", str(config), "--data-dir", str(tmp_path / "held")),
                 f"data dir {tmp_path / 'held'} is in use by a running pyk8s (pid ", "choose another --data-dir")
    finally:
        preflight.release_locks()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        one_line(agent("--kubeconfig", str(config), "--data-dir", str(tmp_path / "free"), "--address", "127.0.0.1",
                       "--port", str(port)),
                 f"pyk8s agent: port {port} on 127.0.0.1 is in use by pid ", "choose another --port")


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--port", "70000", "not a port number"), ("--address", "nowhere", "not an IP address"),
    ("--max-pods", "0", "must be at least 1"), ("--cluster-cidr", "10.0.0.1/8", "not a network"),
    ("--registry-mirror", "nohost", "expected HOST=URL")])
def test_bad_flag_values_are_one_line(tmp_path: Path, flag: str, value: str, message: str) -> None:
    result = agent("--kubeconfig", str(tmp_path / "k"), flag, value)
    one_line(result, "pyk8s agent: argument", flag, message)
    assert result.returncode == 2


def test_credentials_are_masked_in_log_records() -> None:
    info = aiohttp.RequestInfo(URL("https://10.0.0.1:6443/api/v1/pods"), "GET",
                               CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {TOKEN}"})),
                               URL("https://10.0.0.1:6443/api/v1/pods"))
    error = aiohttp.ClientResponseError(info, (), status=403, message="Forbidden")
    assert TOKEN in repr(error)  # what an unguarded `%r` would have logged
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVz"
    pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----"
    record = logging.LogRecord("agent", logging.WARNING, __file__, 1, "failed: %r; token %s; key %s; cfg %s",
                               (error, jwt, pem, f"token: {TOKEN}"), None)
    text = RedactingFormatter("%(message)s").format(record)
    assert TOKEN not in text and jwt not in text and "MIGHAgEAMBMG" not in text
    assert "Bearer <redacted>" in text and "Forbidden" in text
    assert redact("client-key-data: LS0tLS1CRUdJTg==") == "client-key-data: <redacted>"
    assert redact('{"password": "hunter2"}') == '{"password": "<redacted>"}'
    assert redact("GET /api/v1/namespaces/default/pods 200") == "GET /api/v1/namespaces/default/pods 200"
