"""Scheduler throughput: N Ready nodes (objects only), M pending pods, against a real API server.

Prints JSON lines: pods bound per second, the p50/p99 time from pod creation to
binding, and the scheduling cycle itself (filter + score + assume per pod,
binding excluded) as measured inside the scheduler.

Two layouts:
- default: API server, scheduler and load in one process and one event loop,
  as in `pyk8s server`;
- `--split`: the API server (and the load: node/pod creation and the watch that
  times bindings) in a child process, the scheduler alone in this one, as
  `pyk8s apiserver` + `pyk8s scheduler` run: each gets a core of its own.

    .venv/bin/python bench/scheduler_bench.py [--split] [--nodes 1000] [--pods 2000]
    .venv/bin/python bench/scheduler_bench.py --full [--split]   # the issue's case: 1,000 nodes, 10,000 pods
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from controlplane.api import resources
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client
from controlplane.scheduler.cache import PodInfo
from controlplane.scheduler.scheduler import Scheduler

CONCURRENCY = 50


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] if ordered else 0.0


async def create_nodes(client: Client, count: int) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def node(i: int) -> None:
        async with sem:
            created = await client.create(resources.NODES, {"metadata": {"name": f"node-{i:04d}", "labels": {
                "kubernetes.io/hostname": f"node-{i:04d}"}}})
            created["status"] = {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                                 "conditions": [{"type": "Ready", "status": "True"}]}
            await client.update(resources.NODES, created, subresource="status")

    await asyncio.gather(*(node(i) for i in range(count)))


async def create_pods_and_time_bindings(client: Client, count: int) -> dict[str, Any]:
    """Post `count` pods at CONCURRENCY requests; return throughput and create-to-bind figures."""
    sem = asyncio.Semaphore(CONCURRENCY)
    created_at: dict[str, float] = {}
    bound_at: dict[str, float] = {}

    async def pod(i: int) -> None:
        name = f"p{i:05d}"
        async with sem:
            created_at[name] = time.perf_counter()
            await client.create(resources.PODS, {"metadata": {"name": name, "namespace": "default"}, "spec": {
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}})

    async def watch_bindings() -> None:
        async for event in client.watch(resources.PODS, "default", resource_version="1"):
            obj = event.object
            if obj["spec"].get("nodeName") and obj["metadata"]["name"] not in bound_at:
                bound_at[obj["metadata"]["name"]] = time.perf_counter()
                if len(bound_at) == count:
                    return

    start = time.perf_counter()
    watcher = asyncio.create_task(watch_bindings())
    await asyncio.gather(*(pod(i) for i in range(count)))
    created = time.perf_counter() - start
    await asyncio.wait_for(watcher, 3600)
    elapsed = max(bound_at.values()) - start
    latencies = [bound_at[n] - created_at[n] for n in bound_at]
    return {"pods_per_s": round(count / elapsed, 1), "seconds": round(elapsed, 1),
            "pods_created_per_s": round(count / created, 1),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1)}


class TimedScheduler(Scheduler):
    """The scheduler, with the time of each scheduling cycle (filter, score, assume) recorded."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.cycles: list[float] = []

    def schedule(self, pod: PodInfo) -> tuple[str | None, str]:
        began = time.perf_counter()
        try:
            return super().schedule(pod)
        finally:
            self.cycles.append(time.perf_counter() - began)


def report(args: argparse.Namespace, layout: str, load: dict[str, Any], cycles: list[float]) -> None:
    emit("scheduler.throughput", layout=layout, nodes=args.nodes, pods=args.pods, pods_per_s=load["pods_per_s"],
         seconds=load["seconds"], pods_created_per_s=load["pods_created_per_s"])
    emit("scheduler.create_to_bind", layout=layout, p50_ms=load["p50_ms"], p99_ms=load["p99_ms"])
    emit("scheduler.cycle", layout=layout, cycles=len(cycles), p50_ms=round(percentile(cycles, 0.5) * 1000, 2),
         p99_ms=round(percentile(cycles, 0.99) * 1000, 2),
         pods_per_s_if_alone=round(len(cycles) / max(sum(cycles), 1e-9), 1))


async def run_scheduler_until(client: Client, done: Callable[[TimedScheduler], Awaitable[Any]]
                              ) -> tuple[Any, list[float]]:
    stop = asyncio.Event()
    scheduler = TimedScheduler(client)
    task = asyncio.create_task(scheduler.run(stop))
    try:
        return await done(scheduler), scheduler.cycles
    finally:
        stop.set()
        await task


async def one_process(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
        await server.start()
        client = Client.from_kubeconfig(server.admin_kubeconfig)
        await create_nodes(client, args.nodes)
        load, cycles = await run_scheduler_until(client,
                                                 lambda _: create_pods_and_time_bindings(client, args.pods))
        report(args, "one-process", load, cycles)
        await client.close()
        await server.stop()


async def _apiserver_side(nodes: int, pods: int, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
        await server.start()
        client = Client.from_kubeconfig(server.admin_kubeconfig)
        await create_nodes(client, nodes)
        conn.send(str(server.admin_kubeconfig))
        await loop.run_in_executor(None, conn.recv)  # the scheduler has synced its informers
        conn.send(await create_pods_and_time_bindings(client, pods))
        await loop.run_in_executor(None, conn.recv)  # the scheduler has stopped
        await client.close()
        await server.stop()


def _apiserver_process(nodes: int, pods: int, conn: Connection) -> None:
    asyncio.run(_apiserver_side(nodes, pods, conn))


async def split(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_apiserver_process, args=(args.nodes, args.pods, theirs))
    child.start()
    kubeconfig = await loop.run_in_executor(None, ours.recv)
    client = Client.from_kubeconfig(kubeconfig)

    async def done(scheduler: TimedScheduler) -> Any:
        while not (scheduler.pods.has_synced and scheduler.nodes.has_synced):
            await asyncio.sleep(0.05)
        ours.send("go")
        return await loop.run_in_executor(None, ours.recv)

    load, cycles = await run_scheduler_until(client, done)
    report(args, "split", load, cycles)
    ours.send("stop")
    await client.close()
    await loop.run_in_executor(None, child.join)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--full", action="store_true", help="the issue's case: 1,000 nodes and 10,000 pods")
    parser.add_argument("--split", action="store_true", help="API server and load in a process of their own")
    args = parser.parse_args()
    if args.full:
        args.nodes, args.pods = 1000, 10000
    asyncio.run(split(args) if args.split else one_process(args))


if __name__ == "__main__":
    main()
