"""Scheduler throughput: N Ready nodes (Node and Lease objects only), M pending pods, against a real
API server.

Prints JSON lines: pods bound per second, the p50/p99 time from pod creation to
binding, and the scheduling cycle itself (filter + score + assume per pod,
binding excluded) as measured inside the scheduler.

Three layouts:
- default: API server, scheduler and load in one process and one event loop
  (the load's HTTPS client work competes with both);
- `--server`: API server and scheduler in this process, as `pyk8s server` runs
  them, and the load (node/pod creation and the watch that times bindings) in a
  child process, as clients are programs of their own;
- `--split`: the API server and the load in a child process, the scheduler alone
  in this one, as `pyk8s apiserver` + `pyk8s scheduler` run.

    .venv/bin/python bench/scheduler_bench.py [--split|--server] [--nodes 1000] [--pods 2000]
    .venv/bin/python bench/scheduler_bench.py --full [--split|--server]   # the issue's case: 1,000 nodes, 10,000 pods

With `--pending-first` every pod is created before the scheduler starts (10,000
pending pods waiting), and the rate counts from the moment its caches have
synced; create-to-bind then includes that wait. Without it pods are created
(50 requests at a time) while the scheduler runs, as before.

With `--against upstream` each scheduler runs as a program of its own (`pyk8s scheduler` and
upstream's kube-scheduler v1.31, scripts/upstream-binaries.sh) against the same API server, fresh
for each run: first both against upstream's kube-apiserver on a throwaway etcd, then both against
`pyk8s apiserver` on SQLite. The N nodes and every pod are created first (pending), then the
scheduler starts; `pods_per_s` counts from its start (start-up and cache sync included) and
`steady_pods_per_s` from the first binding to the last. kube-scheduler gets a configuration whose
client QPS/burst is 5000 (its default, 50/100, would make the figure its rate limiter's).

    .venv/bin/python bench/scheduler_bench.py --against upstream [--nodes 1000] [--pods 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from controlplane.api import meta, resources
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client
from controlplane.cmd.gctuning import tune_for_control_plane
from controlplane.scheduler.cache import PodInfo
from controlplane.scheduler.scheduler import Scheduler

CONCURRENCY = 50
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import upstream  # noqa: E402  (bench/upstream.py)

KUBE_SCHEDULER_CONFIG = """apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
  qps: 5000
  burst: 5000
leaderElection:
  leaderElect: false
"""


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
            await client.create(resources.LEASES, {  # what a node's kubelet keeps, as in the case
                "metadata": {"name": f"node-{i:04d}", "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": f"node-{i:04d}", "leaseDurationSeconds": 40,
                         "renewTime": meta.now_micro()}})

    await asyncio.gather(*(node(i) for i in range(count)))


async def create_pods_and_time_bindings(client: Client, count: int, pending_first: bool,
                                        scheduler_ready: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    """Post `count` pods at CONCURRENCY requests, either while the scheduler runs or all before it
    starts (`pending_first`); return the binding rate (from the later of the scheduler being ready
    and the first pod) and create-to-bind figures."""
    sem = asyncio.Semaphore(CONCURRENCY)
    created_at: dict[str, float] = {}
    bound_at: dict[str, float] = {}

    async def pod(i: int) -> None:
        name = f"p{i:05d}"
        async with sem:
            created_at[name] = time.perf_counter()
            await client.create(resources.PODS, {"metadata": {"name": name, "namespace": "default"}, "spec": {
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}})

    async def create_all() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(pod(i) for i in range(count)))
        return count / (time.perf_counter() - began)

    async def watch_bindings() -> None:
        async for event in client.watch(resources.PODS, "default", resource_version="1"):
            obj = event.object
            if obj["spec"].get("nodeName") and obj["metadata"]["name"] not in bound_at:
                bound_at[obj["metadata"]["name"]] = time.perf_counter()
                if len(bound_at) == count:
                    return

    watcher = asyncio.create_task(watch_bindings())
    if pending_first:
        created_rate = await create_all()
        await scheduler_ready()
        start = time.perf_counter()
    else:
        await scheduler_ready()
        start = time.perf_counter()
        created_rate = await create_all()
    await asyncio.wait_for(watcher, 3600)
    elapsed = max(bound_at.values()) - start
    latencies = [bound_at[n] - created_at[n] for n in bound_at]
    return {"pods_per_s": round(count / elapsed, 1), "seconds": round(elapsed, 1),
            "pods_created_per_s": round(created_rate, 1),
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
    common = {"layout": layout, "pods_pending_first": args.pending_first}
    emit("scheduler.throughput", **common, nodes=args.nodes, pods=args.pods, pods_per_s=load["pods_per_s"],
         seconds=load["seconds"], pods_created_per_s=load["pods_created_per_s"])
    emit("scheduler.create_to_bind", **common, p50_ms=load["p50_ms"], p99_ms=load["p99_ms"])
    emit("scheduler.cycle", **common, cycles=len(cycles), p50_ms=round(percentile(cycles, 0.5) * 1000, 2),
         p99_ms=round(percentile(cycles, 0.99) * 1000, 2),
         pods_per_s_if_alone=round(len(cycles) / max(sum(cycles), 1e-9), 1))


class RunningScheduler:
    """A TimedScheduler started on `client`, ready once its informers have synced."""

    def __init__(self, client: Client) -> None:
        self.scheduler = TimedScheduler(client)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.scheduler.run(self.stop))
        while not (self.scheduler.pods.has_synced and self.scheduler.nodes.has_synced):
            await asyncio.sleep(0.02)

    async def finish(self) -> list[float]:
        self.stop.set()
        if self.task is not None:
            await self.task
        return self.scheduler.cycles


async def one_process(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
        await server.start()
        client = Client.from_kubeconfig(server.admin_kubeconfig)
        await create_nodes(client, args.nodes)
        in_process = server.loopback_client()  # the scheduler's, as in `pyk8s server`
        running = RunningScheduler(in_process)
        load = await create_pods_and_time_bindings(client, args.pods, args.pending_first, running.start)
        report(args, "one-process", load, await running.finish())
        await in_process.close()
        await client.close()
        await server.stop()


async def _load_side(kubeconfig: str | None, nodes: int, pods: int, pending_first: bool, conn: Connection) -> None:
    """The load (nodes, pods, the watch timing bindings) in a child process; with `kubeconfig` None it
    also runs the API server, and sends its kubeconfig to the parent."""
    loop = asyncio.get_running_loop()

    async def scheduler_ready() -> None:
        conn.send("start")
        await loop.run_in_executor(None, conn.recv)  # the scheduler runs, its informers synced

    with tempfile.TemporaryDirectory() as tmp:
        server: APIServer | None = None
        if kubeconfig is None:
            server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
            await server.start()
            conn.send(str(server.admin_kubeconfig))
            kubeconfig = str(server.admin_kubeconfig)
        client = Client.from_kubeconfig(kubeconfig)
        await create_nodes(client, nodes)
        conn.send(await create_pods_and_time_bindings(client, pods, pending_first, scheduler_ready))
        await loop.run_in_executor(None, conn.recv)  # the scheduler has stopped
        await client.close()
        if server is not None:
            await server.stop()


def _load_process(kubeconfig: str | None, nodes: int, pods: int, pending_first: bool, conn: Connection) -> None:
    if kubeconfig is None:
        tune_for_control_plane()  # this process hosts the API server, as `pyk8s apiserver` would
    asyncio.run(_load_side(kubeconfig, nodes, pods, pending_first, conn))


async def two_processes(args: argparse.Namespace, layout: str) -> None:
    """`split`: API server and load in the child, the scheduler here (`pyk8s apiserver` + `pyk8s
    scheduler`). `server`: API server and scheduler here, as `pyk8s server` runs them, and the load in
    the child, as clients are programs of their own."""
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    with tempfile.TemporaryDirectory() as tmp:
        server: APIServer | None = None
        if layout == "server":
            server = APIServer(APIServerConfig(data_dir=Path(tmp), secure_port=0))
            await server.start()
        kubeconfig = str(server.admin_kubeconfig) if server is not None else None
        child = ctx.Process(target=_load_process, args=(kubeconfig, args.nodes, args.pods, args.pending_first,
                                                        theirs))
        child.start()
        if server is None:
            client = Client.from_kubeconfig(await loop.run_in_executor(None, ours.recv))
        else:
            client = server.loopback_client()  # the scheduler's, as in `pyk8s server`
        await loop.run_in_executor(None, ours.recv)  # "start"
        running = RunningScheduler(client)
        await running.start()
        ours.send("synced")
        load = await loop.run_in_executor(None, ours.recv)
        report(args, layout, load, await running.finish())
        ours.send("stop")
        await client.close()
        await loop.run_in_executor(None, child.join)
        if server is not None:
            await server.stop()


def scheduler_argv(which: str, kubeconfig: Path, config: Path) -> list[str]:
    """The command line of one scheduler as a program of its own."""
    if which == "kube-scheduler":
        return [str(upstream.binaries()["kube-scheduler"]), f"--config={config}", "--secure-port=0", "--v=0"]
    return [str(REPO / ".venv" / "bin" / "python"), "-m", "pyk8s.cli", "scheduler", "--kubeconfig", str(kubeconfig)]


async def one_scheduler_run(server: upstream.Server, which: str, directory: Path, nodes: int,
                            pods: int) -> dict[str, Any]:
    client = Client.from_kubeconfig(server.kubeconfig)
    await create_nodes(client, nodes)
    bound_at: dict[str, float] = {}
    sem = asyncio.Semaphore(CONCURRENCY)

    async def pod(i: int) -> None:
        async with sem:
            await client.create(resources.PODS, {"metadata": {"name": f"p{i:05d}", "namespace": "default"}, "spec": {
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}})

    await asyncio.gather(*(pod(i) for i in range(pods)))
    rv = (await client.list(resources.PODS, "default", limit=1))["metadata"]["resourceVersion"]

    async def watch_bindings() -> None:
        async for event in client.watch(resources.PODS, "default", resource_version=rv):
            obj = event.object  # a BOOKMARK or ERROR event has no spec
            if obj.get("spec", {}).get("nodeName") and obj["metadata"]["name"] not in bound_at:
                bound_at[obj["metadata"]["name"]] = time.perf_counter()
                if len(bound_at) == pods:
                    return

    watcher = asyncio.create_task(watch_bindings())
    await asyncio.sleep(0.5)
    config = directory / f"{which}.yaml"
    config.write_text(KUBE_SCHEDULER_CONFIG.format(kubeconfig=server.kubeconfig))
    log = (directory / f"{which}.log").open("wb")
    start = time.perf_counter()
    # Popen returns at once; the loop below polls the process.
    proc = subprocess.Popen(scheduler_argv(which, server.kubeconfig, config),  # noqa: ASYNC220
                            stdout=log, stderr=subprocess.STDOUT)
    rss = 0.0
    try:
        while not watcher.done():
            await asyncio.sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError(f"{which} exited with {proc.returncode} (log: {directory / (which + '.log')})")
            if time.perf_counter() - start > 3600:
                raise RuntimeError(f"{which}: {len(bound_at)} of {pods} bound after an hour")
            rss = max(rss, upstream.rss_mb(proc.pid))
        await watcher
    finally:
        upstream.stop(proc)
        log.close()
        watcher.cancel()
        await client.close()
    first, last = min(bound_at.values()), max(bound_at.values())
    return {"pods_per_s": round(pods / (last - start), 1), "seconds": round(last - start, 1),
            "steady_pods_per_s": round((pods - 1) / max(last - first, 1e-9), 1),
            "first_bind_s": round(first - start, 2), "scheduler_rss_mb": rss}


async def against_upstream(args: argparse.Namespace) -> None:
    servers = ("kube-apiserver+etcd", "pyk8s+sqlite")
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for server_label in servers:
        for which in ("kube-scheduler", "pyk8s-scheduler"):
            with tempfile.TemporaryDirectory() as tmp:
                base = Path(tmp)
                if server_label == "kube-apiserver+etcd":
                    with upstream.etcd(base) as (port, _), \
                            upstream.kube_apiserver(upstream.binaries()["kube-apiserver"], base, port) as server:
                        figures = await one_scheduler_run(server, which, base, args.nodes, args.pods)
                else:
                    with upstream.pyk8s_apiserver(base) as server:
                        figures = await one_scheduler_run(server, which, base, args.nodes, args.pods)
            results[(server_label, which)] = figures
            emit("scheduler.throughput", scheduler=which, api_server=server_label, nodes=args.nodes, pods=args.pods,
                 pods_pending_first=True, **figures)
    for server_label in servers:
        ours, theirs = results[(server_label, "pyk8s-scheduler")], results[(server_label, "kube-scheduler")]
        emit("scheduler.vs_upstream", ours="pyk8s-scheduler", upstream="kube-scheduler", api_server=server_label,
             nodes=args.nodes, pods=args.pods,
             **{k: {"ours": ours[k], "upstream": theirs[k], "ratio": upstream.ratio(ours[k], theirs[k])}
                for k in theirs})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--full", action="store_true", help="the issue's case: 1,000 nodes and 10,000 pods")
    parser.add_argument("--split", action="store_true", help="API server and load in a process of their own")
    parser.add_argument("--server", action="store_true",
                        help="API server and scheduler in this process (as `pyk8s server`), the load in another")
    parser.add_argument("--pending-first", action="store_true",
                        help="create every pod before the scheduler starts (rate counted from its start)")
    parser.add_argument("--against", choices=["upstream"],
                        help="pyk8s' and upstream's scheduler, each as a program, against the same API servers")
    args = parser.parse_args()
    if args.full:
        args.nodes, args.pods = 1000, 10000
    if args.against == "upstream":
        asyncio.run(against_upstream(args))
        return
    tune_for_control_plane()  # this process runs the scheduler (and the API server), as the pyk8s commands do
    if args.split or args.server:
        asyncio.run(two_processes(args, "split" if args.split else "server"))
    else:
        asyncio.run(one_process(args))


if __name__ == "__main__":
    main()
