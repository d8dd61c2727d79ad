"""Pod startup on one real node, beside the bare CRI calls for the same pods; agent memory.

Brings up a one-node lab (`pyk8s lab up`: control plane, a node namespace with
its own containerd, agent and proxy), then:

* `pod_startup`: N pods created through the API at once, time from create to
  Running as the API reports it (p50/p99, images already present);
* `cri_floor`: the same number of sandboxes+containers started directly through
  CRI on the node's containerd (RunPodSandbox, CreateContainer, StartContainer),
  with the same concurrency — what the agent cannot go below;
* `agent_rss_idle`: resident memory of the agent once its node is Ready, before any pod;
* `agent_rss`: resident memory of the agent process with `--pods-for-rss` pods running;
* `agent_rss_restarted`: the same after the agent is SIGKILLed and started again with the
  same command line (it adopts the running pods, and finds its serving certificate made),
  measured once it has run a full resync of every pod (skipped with `--no-restart`).

    .venv/bin/python bench/pod_startup_bench.py [--pods 30] [--pods-for-rss 100] [--no-restart]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from agent import containerspec as cs
from agent.runtime import Runtime
from controlplane.api import resources
from controlplane.client import Client
from lab import cluster, processes

IMAGE = "pyk8s.local/busybox:1"


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(q * (len(ordered) - 1)), len(ordered) - 1)]


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"bench": "startup"}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}


async def api_startup(client: Client, count: int, prefix: str) -> list[float]:
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async for event in client.watch(resources.PODS, "default", label_selector="bench=startup"):
            obj = event.object
            name = obj.get("metadata", {}).get("name", "")
            if name.startswith(prefix) and obj.get("status", {}).get("phase") == "Running" and name not in running:
                running[name] = time.perf_counter()
                if len(running) == count:
                    done.set()
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)

    async def create(i: int) -> None:
        name = f"{prefix}{i}"
        created[name] = time.perf_counter()
        await client.create(resources.PODS, pod(name), "default")

    await asyncio.gather(*(create(i) for i in range(count)))
    await asyncio.wait_for(done.wait(), 300)
    watcher.cancel()
    return [running[n] - created[n] for n in created]


async def cri_floor(socket: Path, count: int, logs: Path) -> list[float]:
    runtime = Runtime(f"unix://{socket}", node_name="bench-floor")
    ctx = cs.NodeContext(node_name="bench", node_ip="127.0.0.1", cluster_dns=[], cluster_domain="cluster.local",
                         cgroup_root="/pyk8s-bench-floor", pod_logs_dir=logs, allocatable={}, memory_capacity=1 << 30)
    sandboxes: list[str] = []

    async def one(i: int) -> float:
        start = time.perf_counter()
        p = {"metadata": {"name": f"floor{i}", "namespace": "bench", "uid": f"floor-{i}-{random.random()}"},
             "spec": pod("x")["spec"]}
        config = cs.sandbox_config(ctx, p, 0)
        os.makedirs(config.log_directory, exist_ok=True)
        sandbox_id = await runtime.run_sandbox(config)
        sandboxes.append(sandbox_id)
        container = p["spec"]["containers"][0]
        cfg = cs.container_config(ctx, p, container, restart_count=0, env={}, mounts=[])
        cid = await runtime.create_container(sandbox_id, cfg, config)
        await runtime.start_container(cid)
        return time.perf_counter() - start

    try:
        return list(await asyncio.gather(*(one(i) for i in range(count))))
    finally:
        for sandbox_id in sandboxes:
            await runtime.stop_sandbox(sandbox_id)
            await runtime.remove_sandbox(sandbox_id)
        await runtime.close()


def agent_rss_mb(state: cluster.LabState) -> float | None:
    agent = next(r for r in state.records if r.label == "agent-node1").alive()
    return None if agent is None else round(agent.memory_info().rss / 2**20, 1)


async def restart_agent(state: cluster.LabState, settle: float) -> None:
    """SIGKILL the agent and start it again as the lab did; return once it has run for `settle` seconds."""
    index, record = next((i, r) for i, r in enumerate(state.records) if r.label == "agent-node1")
    proc = record.alive()
    if proc is None:
        raise RuntimeError("the agent is not running")
    argv = proc.cmdline()
    log = state.data_dir / "logs" / "agent-node1.log"
    proc.kill()
    proc.wait(30)
    offset = log.stat().st_size
    state.records[index] = processes.spawn("agent-node1", argv, log, netns_path=state.net.netns_path("node1"))
    state.save()
    deadline = time.monotonic() + 180
    while b"is running" not in log.read_bytes()[offset:]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the restarted agent did not come up; see {log}")
        await asyncio.sleep(0.5)
    await asyncio.sleep(settle)


async def measure(state: cluster.LabState, pods: int, pods_for_rss: int, restart: bool) -> None:
    client = Client.from_kubeconfig(state.kubeconfig)
    try:
        await asyncio.sleep(2)
        emit("agent_rss_idle", pods=0, rss_mb=agent_rss_mb(state))
        # warm-up: the image is pulled once, outside the measurement
        await api_startup(client, 1, "warm")
        times = await api_startup(client, pods, "start")
        emit("pod_startup", pods=pods, p50_s=round(statistics.median(times), 3),
             p99_s=round(percentile(times, 0.99), 3), max_s=round(max(times), 3))
        socket = state.data_dir / "nodes" / "node1" / "containerd" / "containerd.sock"
        floor = await cri_floor(socket, pods, state.data_dir / "floor-logs")
        emit("cri_floor", pods=pods, p50_s=round(statistics.median(floor), 3),
             p99_s=round(percentile(floor, 0.99), 3), max_s=round(max(floor), 3),
             ratio_p99=round(percentile(times, 0.99) / percentile(floor, 0.99), 2))
        extra = max(pods_for_rss - pods - 1, 0)
        if extra:
            await api_startup(client, extra, "rss")
        running = pods + 1 + extra
        emit("agent_rss", pods=running, rss_mb=agent_rss_mb(state))
        if restart:
            # sync_frequency (10 s) and a margin: every worker has made a full pass
            await restart_agent(state, settle=15)
            emit("agent_rss_restarted", pods=running, rss_mb=agent_rss_mb(state))
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--pods-for-rss", type=int, default=100)
    parser.add_argument("--no-restart", action="store_true", help="skip the restarted agent's figure")
    args = parser.parse_args()
    data_dir = Path("/tmp/pyk8s-bench-startup")
    name = "bench"
    try:
        state = cluster.up(data_dir, 1, name=name, subnet="10.95.1.0/24",
                           timeout=180, log=lambda *_: None)
        asyncio.run(measure(state, args.pods, args.pods_for_rss, not args.no_restart))
    finally:
        cluster.down(data_dir, name=name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
