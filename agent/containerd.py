"""The agent's own containerd: a generated config and a supervised process, like k3s.

Each agent (one per node, several per machine in the lab) runs its containerd
with its own root, state, socket and CNI directories, so nodes never see each
other's containers. The config carries the settings DESIGN.md §4 found
necessary here (`restrict_oom_score_adj`, the local pause image, the
`pyk8s.local` mirror over plain HTTP). The supervisor restarts containerd when
it dies; container shims outlive such restarts, so running pods keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psutil

log = logging.getLogger(__name__)
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class ContainerdPaths:
    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(paths: ContainerdPaths, *, sandbox_image: str = "pyk8s.local/pause:1",
                  registry_mirrors: dict[str, str] | None = None, cni_bin_dir: Path = CNI_BIN_DIR) -> str:
    """containerd 1.6 config (version 2) for one node."""
    lines = [
        "version = 2",
        f"root = {_toml_string(str(paths.root))}",
        f"state = {_toml_string(str(paths.state))}",
        "",
        "[grpc]",
        f"  address = {_toml_string(str(paths.socket))}",
        "",
        "[plugins.\"io.containerd.grpc.v1.cri\"]",
        f"  sandbox_image = {_toml_string(sandbox_image)}",
        "  restrict_oom_score_adj = true",
        "  enable_selinux = false",
        "  [plugins.\"io.containerd.grpc.v1.cri\".containerd]",
        "    snapshotter = \"overlayfs\"",
        "    default_runtime_name = \"runc\"",
        "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]",
        "      runtime_type = \"io.containerd.runc.v2\"",
        "      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]",
        "        SystemdCgroup = false",
        "  [plugins.\"io.containerd.grpc.v1.cri\".cni]",
        f"    bin_dir = {_toml_string(str(cni_bin_dir))}",
        f"    conf_dir = {_toml_string(str(paths.cni_conf_dir))}",
    ]
    mirrors = dict(registry_mirrors or {})
    # Nothing is pulled from the internet: the local registry behind `pyk8s.local` also serves
    # docker.io and registry.k8s.io, so `image: busybox` or `registry.k8s.io/pause:3.10` run unchanged.
    if "pyk8s.local" in mirrors:
        for upstream in ("docker.io", "registry.k8s.io"):
            mirrors.setdefault(upstream, mirrors["pyk8s.local"])
    for host, endpoint in sorted(mirrors.items()):
        lines += [
            f"  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.{_toml_string(host)}]",
            f"    endpoint = [{_toml_string(endpoint)}]",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class ContainerdSupervisor:
    """Starts containerd with the node's config and keeps it running until stopped."""

    paths: ContainerdPaths
    config_text: str
    binary: str = "containerd"
    restarts: int = 0
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    async def start(self, ready_timeout: float = 30.0) -> None:
        for directory in (self.paths.root, self.paths.state, self.paths.cni_conf_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.paths.config.write_text(self.config_text)
        await asyncio.to_thread(self._stop_leftover)
        await self._spawn()
        await self.wait_ready(ready_timeout)
        self._task = asyncio.create_task(self._watch(), name="containerd-supervisor")

    async def _spawn(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.paths.socket.unlink()  # a stale socket of a killed containerd
        log_file = self._open_log()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary, "--config", str(self.paths.config), stdout=log_file, stderr=log_file,
                start_new_session=True)
        finally:
            log_file.close()
        self.pid_file.write_text(str(self._proc.pid))

    @property
    def pid_file(self) -> Path:
        return self.paths.base / "containerd.pid"

    def _stop_leftover(self) -> None:
        """A containerd of an agent that was killed still holds our root: stop it (its shims stay)."""
        try:
            pid = int(self.pid_file.read_text())
            proc = psutil.Process(pid)
            if str(self.paths.config) not in proc.cmdline():
                return
        except (OSError, ValueError, psutil.Error):
            return
        log.info("stopping containerd %d left by an earlier agent", pid)
        proc.terminate()
        try:
            proc.wait(15)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _open_log(self) -> BinaryIO:
        return open(self.paths.base / "containerd.log", "ab")  # the child inherits it; closed after spawn

    async def wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.paths.socket.is_socket():
            if self._proc is not None and self._proc.returncode is not None:
                raise RuntimeError(f"containerd exited with {self._proc.returncode}; see "
                                   f"{self.paths.base / 'containerd.log'}")
            if loop.time() > deadline:
                raise TimeoutError(f"containerd did not create {self.paths.socket}")
            await asyncio.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _watch(self) -> None:
        backoff = 0.5
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.warning("containerd exited with %s; restarting in %.1fs", code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            try:
                await self._spawn()
                await self.wait_ready(30.0)
                self.restarts += 1
                backoff = 0.5
            except (OSError, RuntimeError, TimeoutError) as exc:
                log.error("could not restart containerd: %s", exc)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop containerd (its shims, and so the containers, keep running)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), timeout)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
