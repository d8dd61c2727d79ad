"""Scheduler throughput: N nodes (objects only), M pending pods, against a real API server.

Prints JSON lines: pods bound per second and the p50/p99 time from pod creation
to binding. The API server runs in this process (so one event loop serves both,
as in `pyk8s server`).

    .venv/bin/python bench/scheduler_bench.py [--nodes 1000] [--pods 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from controlplane.api import resources
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client
from controlplane.scheduler.scheduler import run_scheduler


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
        await server.start()
        client = Client.from_kubeconfig(server.admin_kubeconfig)
        sem = asyncio.Semaphore(50)

        async def node(i: int) -> None:
            async with sem:
                created = await client.create(resources.NODES, {"metadata": {"name": f"node-{i:04d}"}})
                created["status"] = {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                                     "conditions": [{"type": "Ready", "status": "True"}]}
                await client.update(resources.NODES, created, subresource="status")

        await asyncio.gather(*(node(i) for i in range(args.nodes)))
        stop = asyncio.Event()
        scheduler = asyncio.create_task(run_scheduler(client, stop=stop))
        created_at: dict[str, float] = {}

        async def pod(i: int) -> None:
            name = f"p{i:05d}"
            async with sem:
                created_at[name] = time.perf_counter()
                await client.create(resources.PODS, {"metadata": {"name": name, "namespace": "default"}, "spec": {
                    "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}})

        bound_at: dict[str, float] = {}
        start = time.perf_counter()

        async def watch_bindings() -> None:
            async for event in client.watch(resources.PODS, "default", resource_version="1"):
                obj = event.object
                if obj["spec"].get("nodeName") and obj["metadata"]["name"] not in bound_at:
                    bound_at[obj["metadata"]["name"]] = time.perf_counter()
                    if len(bound_at) == args.pods:
                        return

        watcher = asyncio.create_task(watch_bindings())
        await asyncio.gather(*(pod(i) for i in range(args.pods)))
        await asyncio.wait_for(watcher, 3600)
        elapsed = max(bound_at.values()) - start
        latencies = sorted(bound_at[n] - created_at[n] for n in bound_at)
        emit("scheduler.throughput", nodes=args.nodes, pods=args.pods, pods_per_s=round(args.pods / elapsed, 1))
        emit("scheduler.create_to_bind", p50_ms=round(latencies[len(latencies) // 2] * 1000, 1),
             p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 1))
        stop.set()
        await scheduler
        await client.close()
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
