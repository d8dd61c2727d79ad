"""Remove what a lab's nodes leave behind: pods, shims, mounts, cgroups.

Pods are removed through each node's own containerd (CRI StopPodSandbox and
RemovePodSandbox), so the runtime releases their network namespaces and IPs.
Whatever survives a crash — shims and container processes whose command line
names the lab's data directory, mounts below it, empty cgroups the agents
created — is then removed by name, never anything outside the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import psutil

from agent.mounts import unmount_below
from lab import processes

log = logging.getLogger(__name__)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _node_sockets(nodes_dir: Path) -> list[Path]:
    if not nodes_dir.is_dir():
        return []
    return sorted(p for p in nodes_dir.glob("*/containerd/containerd.sock") if p.is_socket())


async def _remove_node_pods(socket: Path) -> None:
    from agent.runtime import Runtime
    from cri import api_pb2

    runtime = Runtime(f"unix://{socket}", node_name="")
    try:
        # every sandbox in this node's own containerd, whichever agent made it
        response = await runtime.runtime.list_pod_sandbox(api_pb2.ListPodSandboxRequest())
        for sandbox in response.items:
            with contextlib.suppress(Exception):
                await runtime.stop_sandbox(sandbox.id)
            with contextlib.suppress(Exception):
                await runtime.remove_sandbox(sandbox.id)
    finally:
        await runtime.close()


def remove_pods(nodes_dir: Path) -> None:
    """Stop and remove every pod sandbox on every node whose containerd still answers."""
    for socket in _node_sockets(nodes_dir):
        try:
            asyncio.run(asyncio.wait_for(_remove_node_pods(socket), 60))
        except Exception as exc:  # a dead containerd: the leftovers pass below handles it
            log.warning("could not remove pods through %s: %s", socket, exc)


def kill_processes_below(root: Path) -> None:
    """Kill every process whose command line names `root`, with its descendants."""
    doomed: list[psutil.Process] = []
    for proc in processes.processes_mentioning(str(root)):
        with contextlib.suppress(psutil.Error):
            doomed.extend(proc.children(recursive=True))
        doomed.append(proc)
    processes.kill_all(doomed)


def remove_empty_cgroups(name_prefix: str) -> None:
    """Remove cgroup directories named `name_prefix*` (deepest first) in every hierarchy."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        for top in hierarchy.glob(f"{name_prefix}*"):
            if not top.is_dir():
                continue
            for dirpath, _dirnames, _files in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


def remove_leftovers(data_dir: Path) -> None:
    kill_processes_below(data_dir)
    unmount_below(data_dir)
