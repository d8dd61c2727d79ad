"""A whole cluster's figures: bring-up of an N-node lab, a 30-replica rollout, memory at rest.

    .venv/bin/python bench/lab_bench.py [--nodes 3] [--replicas 30]

Prints JSON lines: seconds for `lab up` until every node is Ready; seconds from
posting a Deployment of `--replicas` web pods to all of them Ready across the
nodes; resident memory of every lab process (control plane, each agent, its
containerd, each proxy) once the cluster is at rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from pathlib import Path

from controlplane.api import resources
from controlplane.client import Client
from lab import cluster


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def deployment(replicas: int) -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "bench"}},
                     "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {
                         "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "web", "image": "pyk8s.local/web:1",
                                         "ports": [{"containerPort": 8080}],
                                         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}


async def rollout(state: cluster.LabState, replicas: int) -> float:
    async with Client.from_kubeconfig(state.kubeconfig) as client:
        start = time.perf_counter()
        await client.create(resources.DEPLOYMENTS, deployment(replicas), "default")
        while True:
            found = await client.get(resources.DEPLOYMENTS, "bench", "default")
            if (found.get("status") or {}).get("readyReplicas") == replicas:
                return time.perf_counter() - start
            await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=30)
    args = parser.parse_args()
    data_dir = Path("/tmp/pyk8s-bench-lab")
    name = "blab"
    try:
        start = time.perf_counter()
        state = cluster.up(data_dir, args.nodes, name=name, subnet="10.95.2.0/24", timeout=300, log=lambda *_: None)
        emit("lab_up", nodes=args.nodes, seconds=round(time.perf_counter() - start, 2))
        emit("deployment_ready", replicas=args.replicas, nodes=args.nodes,
             seconds=round(asyncio.run(rollout(state, args.replicas)), 2))
        time.sleep(10)  # at rest
        memory: dict[str, float] = {}
        for record in state.records:
            proc = record.alive()
            if proc is None:
                continue
            memory[record.label] = round(proc.memory_info().rss / 2**20, 1)
            for child in proc.children(recursive=True):
                if child.name() == "containerd":
                    memory[f"containerd-{record.label.removeprefix('agent-')}"] = round(
                        child.memory_info().rss / 2**20, 1)
        emit("rss_mb_at_rest", pods=args.replicas, **memory)
    finally:
        cluster.down(data_dir, name=name)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
