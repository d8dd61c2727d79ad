"""API server and storage benchmark: prints one JSON line per figure.

The API server runs in its own process (`pyk8s apiserver`) on loopback; the load
comes from this process over HTTPS with the project's own client session. The
floor for writes is raw SQLite: one ~550-byte row per committed transaction,
measured in the same run on the same disk.

    .venv/bin/python bench/api_bench.py [--pods 10000] [--clients 50] [--watchers 1000] [--services 3000]

With `--against upstream` it runs only the CREATE/GET load (and the first-request figure) against
three servers in turn, each fresh: upstream's kube-apiserver on a throwaway etcd (Debian's 3.4),
`pyk8s apiserver` on SQLite, and `pyk8s apiserver` on the same kind of etcd; each line names its
server, then one `api.vs_upstream` line per pyk8s server gives ours/upstream for every figure,
including the server's RSS after the load (bench/UPSTREAM.md).

    .venv/bin/python bench/api_bench.py --against upstream [--clients 50] [--per-client 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from controlplane.api import resources
from controlplane.client import Client
from controlplane.storage.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upstream

ROW = b"x" * 550
REPO = Path(__file__).resolve().parents[1]


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": name, **values}), flush=True)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def raw_sqlite_floor(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v BLOB)")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (f"/k/{i}", ROW))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def store_writes(path: Path, n: int, writers: int) -> float:
    store = SQLiteStore(path, compact_interval=0)
    await store.start()
    per = n // writers

    async def writer(w: int) -> None:
        for i in range(per):
            await store.create(f"/k/{w}/{i}", ROW)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - start
    await store.close()
    return per * writers / elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pod(name: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "pyk8s.local/web:1",
                                     "ports": [{"containerPort": 8080}]}]}}


async def open_connections(client: Client, clients: int, **tags: object) -> dict[str, float]:
    """Each client's first request: a new HTTPS connection (TCP and TLS handshakes) all at once.

    Upstream's API latency SLI (apiserver_request_duration_seconds) starts when the request
    has arrived, so connection set-up is reported here on its own and the request figures
    below are taken on open connections, as long-lived clients (informers, controllers,
    kubelets) hold them."""
    first: list[float] = []

    async def one() -> None:
        t0 = time.perf_counter()
        await client.get(resources.NAMESPACES, "default")
        first.append(time.perf_counter() - t0)

    await asyncio.gather(*(one() for _ in range(clients)))
    figures = {"p50_ms": pct(first, 0.5), "max_ms": pct(first, 1.0)}
    emit("api.first_request_on_new_connection", **tags, clients=clients, **figures)
    return figures


async def api_load(client: Client, clients: int, per_client: int, **tags: object) -> dict[str, float]:
    create_lat: list[float] = []
    get_lat: list[float] = []

    async def worker(w: int) -> None:
        for i in range(per_client):
            t0 = time.perf_counter()
            await client.create(resources.CONFIGMAPS, {"metadata": {"name": f"l-{w}-{i}", "namespace": "default"},
                                                       "data": {"v": "x" * 200}})
            create_lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await client.get(resources.CONFIGMAPS, f"l-{w}-{i}", "default")
            get_lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - start
    figures = {"create_p50_ms": pct(create_lat, 0.5), "create_p99_ms": pct(create_lat, 0.99),
               "create_per_s": round(len(create_lat) / elapsed, 1),
               "get_p50_ms": pct(get_lat, 0.5), "get_p99_ms": pct(get_lat, 0.99)}
    emit("api.create", **tags, clients=clients, n=len(create_lat), p50_ms=figures["create_p50_ms"],
         p99_ms=figures["create_p99_ms"], per_s=figures["create_per_s"])
    emit("api.get", **tags, clients=clients, n=len(get_lat), p50_ms=figures["get_p50_ms"],
         p99_ms=figures["get_p99_ms"])
    return figures


async def list_pods(client: Client, pods: int) -> None:
    sem = asyncio.Semaphore(50)

    async def make(i: int) -> None:
        async with sem:
            await client.create(resources.PODS, pod(f"p{i:05d}"))

    t0 = time.perf_counter()
    await asyncio.gather(*(make(i) for i in range(pods)))
    emit("api.create_pods", n=pods, seconds=round(time.perf_counter() - t0, 2))
    full = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = await client.list(resources.PODS, "default")
        full.append(time.perf_counter() - t0)
        assert len(result["items"]) == pods
    emit("api.list_pods_full", n=pods, seconds=round(statistics.median(full), 3))
    t0 = time.perf_counter()
    token, seen = None, 0
    while True:
        page = await client.list(resources.PODS, "default", limit=500, continue_=token)
        seen += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
    assert seen == pods
    emit("api.list_pods_paginated", n=pods, limit=500, seconds=round(time.perf_counter() - t0, 3))


async def service_creates(client: Client, services: int, batch: int = 500, clients: int = 10) -> None:
    """Services posted in batches: whether a create's cost grows with the Services already stored
    (address allocation)."""
    await client.create(resources.NAMESPACES, {"metadata": {"name": "svc-bench"}})

    async def worker(names: Iterator[int], latencies: list[float]) -> None:
        for i in names:
            t0 = time.perf_counter()
            await client.create(resources.SERVICES, {"metadata": {"name": f"s{i}", "namespace": "svc-bench"},
                                                     "spec": {"selector": {"app": f"s{i}"}, "ports": [{"port": 80}]}})
            latencies.append(time.perf_counter() - t0)

    rates: list[float] = []
    latencies: list[float] = []
    for first in range(0, services, batch):
        names, latencies = iter(range(first, min(first + batch, services))), []
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(names, latencies) for _ in range(clients)))
        rates.append(len(latencies) / (time.perf_counter() - t0))
    emit("api.service_create", services=services, clients=clients, first_batch_per_s=round(rates[0], 1),
         last_batch_per_s=round(rates[-1], 1), last_batch_p99_ms=pct(latencies, 0.99))


async def watch_fanout(client: Client, url: str, token: str, ca: Path, watchers: int) -> None:
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    arrived: list[float] = []
    ready = 0
    all_ready = asyncio.Event()
    async with aiohttp.ClientSession(connector=conn, headers={"Authorization": f"Bearer {token}"}) as http:
        rv = (await client.list(resources.CONFIGMAPS, "kube-public"))["metadata"]["resourceVersion"]

        async def watcher() -> None:
            nonlocal ready
            params = {"watch": "true", "resourceVersion": rv}
            async with http.get(f"{url}/api/v1/namespaces/kube-public/configmaps", params=params,
                                timeout=aiohttp.ClientTimeout(total=120)) as resp:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                await resp.content.readline()
                arrived.append(time.perf_counter())

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        await client.create(resources.CONFIGMAPS, {"metadata": {"name": "fanout", "namespace": "kube-public"}})
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    emit("api.watch_fanout", watchers=watchers, last_ms=round((max(arrived) - t0) * 1000, 1),
         p50_ms=round((statistics.median(arrived) - t0) * 1000, 1))


async def load_one(server: upstream.Server, label: str, clients: int, per_client: int) -> dict[str, float]:
    """The --against upstream load on one server; its figures plus the server's RSS afterwards."""
    async with Client.from_kubeconfig(server.kubeconfig) as client:
        first = await open_connections(client, clients, server=label)
        figures = await api_load(client, clients, per_client, server=label)
    figures["first_request_p50_ms"] = first["p50_ms"]
    figures["server_rss_mb"] = upstream.rss_mb(server.proc.pid)
    upstream.emit("api.server_rss", server=label, rss_mb=figures["server_rss_mb"])
    return figures


async def against_upstream(args: argparse.Namespace) -> None:
    binary = upstream.binaries()["kube-apiserver"]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "up").mkdir()
        with upstream.etcd(base / "up") as (port, etcd_proc), upstream.kube_apiserver(binary, base / "up", port) as s:
            label = "kube-apiserver+etcd"
            results[label] = await load_one(s, label, args.clients, args.per_client)
            upstream.emit("api.etcd_rss", server=label, rss_mb=upstream.rss_mb(etcd_proc.pid))
        (base / "sq").mkdir()
        with upstream.pyk8s_apiserver(base / "sq") as s:
            results["pyk8s+sqlite"] = await load_one(s, "pyk8s+sqlite", args.clients, args.per_client)
        (base / "pe").mkdir()
        with upstream.etcd(base / "pe") as (port, etcd_proc), \
                upstream.pyk8s_apiserver(base / "pe", f"etcd://127.0.0.1:{port}") as s:
            label = "pyk8s+etcd"
            results[label] = await load_one(s, label, args.clients, args.per_client)
            upstream.emit("api.etcd_rss", server=label, rss_mb=upstream.rss_mb(etcd_proc.pid))
    theirs = results["kube-apiserver+etcd"]
    for label in ("pyk8s+sqlite", "pyk8s+etcd"):
        ours = results[label]
        upstream.emit("api.vs_upstream", ours=label, upstream="kube-apiserver+etcd", clients=args.clients,
                      **{k: {"ours": ours[k], "upstream": theirs[k], "ratio": upstream.ratio(ours[k], theirs[k])}
                         for k in theirs})


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=100)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--services", type=int, default=3000)
    parser.add_argument("--against", choices=["upstream"], help="the CREATE/GET load, also on kube-apiserver")
    args = parser.parse_args()
    if args.against == "upstream":
        await against_upstream(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        floor = raw_sqlite_floor(tmpdir / "raw.db", 5000)
        emit("sqlite.raw_commits", per_s=round(floor, 0))
        for writers in (1, 50):
            rate = await store_writes(tmpdir / f"store{writers}.db", 5000, writers)
            emit("store.create", writers=writers, per_s=round(rate, 0), ratio_to_raw=round(rate / floor, 2))

        port = free_port()
        data = tmpdir / "server"
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pyk8s.cli", "apiserver", "--data-dir", str(data), "--secure-port", str(port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            kubeconfig = data / "admin.kubeconfig"
            for _ in range(100):
                if kubeconfig.exists():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            async with Client.from_kubeconfig(kubeconfig) as client:
                await open_connections(client, args.clients)
                await api_load(client, args.clients, args.per_client)
                await list_pods(client, args.pods)
                await service_creates(client, args.services)
                await watch_fanout(client, client.server, client.token or "", data / "pki" / "ca.crt",
                                   args.watchers)
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 30)


if __name__ == "__main__":
    asyncio.run(main())
