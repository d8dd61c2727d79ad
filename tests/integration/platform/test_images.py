"""The test images: reproducible, valid OCI layouts whose programs behave as promised."""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static is not installed")


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_build", ROOT / "scripts" / "images" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builds_are_reproducible_oci_layouts(tmp_path: Path) -> None:
    build = builder()
    first = build.build_all(tmp_path / "a")
    second = build.build_all(tmp_path / "b")
    assert first == second and set(first) == {"pause:1", "busybox:1", "web:1", "web:2"}
    assert first["web:1"] != first["web:2"]
    index = json.loads((tmp_path / "a" / "web-1" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1"
    if shutil.which("umoci"):
        listed = subprocess.run(["umoci", "ls", "--layout", str(tmp_path / "a" / "web-1")], capture_output=True,
                                text=True, check=True)
        assert listed.stdout.split() == ["1"]


def test_web_responder_answers_any_path_with_the_host_name() -> None:
    build = builder()
    request = b"GET /anything/at/all HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
    raw = subprocess.run(["/bin/busybox", "sh", "-c", build.WEB_RESPONDER], input=request, capture_output=True,
                         timeout=10, check=True).stdout  # bytes: the CRLFs are part of what is tested
    head, _, body = raw.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK")
    hostname = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert body.strip() == hostname
    assert f"Content-Length: {len(body)}" in head


def test_pause_exits_promptly_on_sigterm() -> None:
    build = builder()
    proc = subprocess.Popen(["/bin/busybox", *build.PAUSE_CMD[0:1], *build.PAUSE_CMD[1:]])
    try:
        time.sleep(0.5)
        assert proc.poll() is None  # it sleeps
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_setup_platform_serves_the_images() -> None:
    try:
        with urllib.request.urlopen("http://127.0.0.1:5000/v2/_catalog", timeout=2) as resp:
            catalog = json.loads(resp.read())
    except OSError:
        pytest.fail("no local registry on 127.0.0.1:5000: run scripts/setup-platform.sh (make setup) first")
    assert {"pause", "busybox", "web"} <= set(catalog["repositories"])
