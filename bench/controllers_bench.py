"""Controller latency: a 100-replica Deployment to 100 pods, and 1,000 ready pods into EndpointSlices.

The API server and the controller manager run in this process (as in
`pyk8s server`); no kubelet runs, so the benchmark marks pods Ready itself
through the status subresource, as a kubelet would. Prints JSON lines.

    .venv/bin/python bench/controllers_bench.py [--replicas 100] [--pods 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from controlplane.api import meta, resources
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client
from controlplane.cmd.gctuning import tune_for_control_plane
from controlplane.controllers.manager import run_controller_manager


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


async def wait_for(check: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.05)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--pods", type=int, default=1000)
    args = parser.parse_args()
    tune_for_control_plane()  # the API server and controllers run here, as in `pyk8s server`
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
        await server.start()
        client = Client.from_kubeconfig(server.admin_kubeconfig)  # the load: a client of its own, over HTTPS
        in_process = server.loopback_client()  # the controllers', as in `pyk8s server`
        stop = asyncio.Event()
        manager = asyncio.create_task(run_controller_manager(
            in_process, stop=stop, enabled=("replicaset", "deployment", "endpointslice", "garbagecollector")))
        await asyncio.sleep(1.0)  # informers synced

        start = time.perf_counter()
        await client.create(resources.DEPLOYMENTS, {"metadata": {"name": "big", "namespace": "default"}, "spec": {
            "replicas": args.replicas, "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"labels": {"app": "big"}}, "spec": {
                "containers": [{"name": "c", "image": "pyk8s.local/web:1"}]}}}})

        async def all_created() -> bool:
            pods = await client.list(resources.PODS, "default", label_selector="app=big")
            return len(pods["items"]) == args.replicas

        await wait_for(all_created)
        emit("controllers.deployment_to_pods", replicas=args.replicas, seconds=round(time.perf_counter() - start, 2))

        await client.create(resources.SERVICES, {"metadata": {"name": "svc", "namespace": "default"}, "spec": {
            "selector": {"app": "ep"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        sem = asyncio.Semaphore(50)

        async def ready_pod(i: int) -> None:
            async with sem:
                pod = await client.create(resources.PODS, {"metadata": {"name": f"ep{i:04d}", "namespace": "default",
                                                                        "labels": {"app": "ep"}},
                                                           "spec": {"nodeName": "n1", "containers": [
                                                               {"name": "c", "image": "i"}]}})
                now = meta.now_rfc3339()
                pod["status"] = {"phase": "Running", "podIP": f"10.244.{i // 250}.{i % 250 + 1}",
                                 "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}
                await client.update(resources.PODS, pod, subresource="status")

        start = time.perf_counter()
        await asyncio.gather(*(ready_pod(i) for i in range(args.pods)))
        written = time.perf_counter() - start

        async def sliced() -> bool:
            slices = await client.list(resources.ENDPOINTSLICES, "default",
                                       label_selector="kubernetes.io/service-name=svc")
            ready = sum(1 for s in slices["items"] for e in s.get("endpoints") or [] if e["conditions"]["ready"])
            return ready == args.pods

        await wait_for(sliced)
        emit("controllers.pods_to_endpointslices", pods=args.pods, seconds=round(time.perf_counter() - start, 2),
             pod_writes_seconds=round(written, 2))
        stop.set()
        await manager
        await in_process.close()
        await client.close()
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
