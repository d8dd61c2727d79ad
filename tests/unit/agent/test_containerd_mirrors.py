"""The node's containerd serves docker.io and registry.k8s.io from the local registry."""

from __future__ import annotations

from pathlib import Path

from agent.containerd import ContainerdPaths, render_config


def _endpoint_after(text: str, host: str) -> str:
    lines = text.splitlines()
    i = lines.index(f'  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{host}"]')
    return lines[i + 1].strip()


def test_docker_io_and_registry_k8s_io_follow_the_local_registry() -> None:
    text = render_config(ContainerdPaths(Path("/x")), registry_mirrors={"pyk8s.local": "http://10.99.0.1:5000"})
    for host in ("pyk8s.local", "docker.io", "registry.k8s.io"):
        assert _endpoint_after(text, host) == 'endpoint = ["http://10.99.0.1:5000"]'


def test_an_explicit_mirror_wins_and_no_local_registry_adds_none() -> None:
    text = render_config(ContainerdPaths(Path("/x")), registry_mirrors={
        "pyk8s.local": "http://10.99.0.1:5000", "docker.io": "http://10.99.0.2:5000"})
    assert _endpoint_after(text, "docker.io") == 'endpoint = ["http://10.99.0.2:5000"]'
    assert "registry.k8s.io" in text
    assert "mirrors" not in render_config(ContainerdPaths(Path("/x")), registry_mirrors={})
