"""kubectl logs, exec and port-forward through the API server to the agent, with the real kubectl."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

from controlplane.api import resources
from tests.conftest import kubectl_binary
from tests.helpers import eventually
from tests.integration.agent.conftest import NodeEnv, running


def kubectl(kubeconfig: Path, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl_binary(), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          input=input, timeout=timeout)


async def start_pod(env: NodeEnv, name: str, script: str, image: str = "pyk8s.local/busybox:1") -> None:
    await env.client.create(resources.PODS, {
        "metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "c", "image": image, "command": ["sh", "-c", script]}]}}, "default")
    await env.wait_pod(name, running)


async def test_logs_exec_and_follow(node_env: NodeEnv) -> None:
    await start_pod(node_env, "talker", "echo one; echo two >&2; i=0; while true; do i=$((i+1)); echo tick $i; "
                                        "sleep 0.5; done")

    async def has_ticks() -> bool:
        out = await asyncio.to_thread(kubectl, node_env.kubeconfig, "logs", "talker")
        return "tick 2" in out.stdout

    await eventually(has_ticks, timeout=20)
    out = await asyncio.to_thread(kubectl, node_env.kubeconfig, "logs", "talker")
    lines = out.stdout.splitlines()
    # stdout and stderr are separate pipes: their relative order is the runtime's, as upstream
    assert {"one", "two", "tick 1"} <= set(lines[:4]) and lines.index("one") < lines.index("tick 1"), out
    tail = await asyncio.to_thread(kubectl, node_env.kubeconfig, "logs", "talker", "--tail=1")
    assert len(tail.stdout.splitlines()) == 1 and tail.stdout.startswith("tick")
    stamped = await asyncio.to_thread(kubectl, node_env.kubeconfig, "logs", "talker", "--timestamps", "--tail=1")
    assert stamped.stdout[:4].isdigit() and "Z tick" in stamped.stdout
    proc = await asyncio.create_subprocess_exec(kubectl_binary(), "--kubeconfig", str(node_env.kubeconfig), "logs", "-f",
                                                "talker", "--tail=0", stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert line.startswith(b"tick ")
    finally:
        proc.kill()
        await proc.wait()

    done = await asyncio.to_thread(kubectl, node_env.kubeconfig, "exec", "talker", "--", "sh", "-c",
                                   "echo out; echo err >&2; exit 3")
    assert done.returncode == 3, done
    assert done.stdout == "out\n" and "err" in done.stderr
    piped = await asyncio.to_thread(kubectl, node_env.kubeconfig, "exec", "-i", "talker", "--", "cat",
                                    input="through stdin\n")
    assert piped.stdout == "through stdin\n", piped


async def test_exec_interactive_tty(node_env: NodeEnv) -> None:
    await start_pod(node_env, "shell", "sleep 3600")
    # a real terminal for kubectl: `script` gives it a pty, as a user's shell would
    command = f"kubectl --kubeconfig {node_env.kubeconfig} exec -it shell -- sh"
    proc = await asyncio.create_subprocess_exec("script", "-qfec", command, "/dev/null", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"echo $((6*7)); exit\n")
    await proc.stdin.drain()
    output = await asyncio.wait_for(proc.stdout.read(), 30)
    await proc.wait()
    assert b"42" in output, output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_port_forward(node_env: NodeEnv) -> None:
    await node_env.client.create(resources.PODS, {
        "metadata": {"name": "webpf"}, "spec": {"containers": [
            {"name": "web", "image": "pyk8s.local/web:1", "ports": [{"containerPort": 8080}]}]}}, "default")
    await node_env.wait_pod("webpf", running)
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(kubectl_binary(), "--kubeconfig", str(node_env.kubeconfig),
                                                "port-forward",
                                                "pod/webpf", f"{port}:8080", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"Forwarding from" in first, first

        async def answered() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return data.endswith(b"webpf\n")

        await eventually(answered, timeout=20)
    finally:
        proc.kill()
        await proc.wait()
