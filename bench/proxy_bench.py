"""Proxy sync benchmark: full sync and one-endpoint-change sync, beside the bare loader (the floor).

For each mode and size (services x 10 endpoints) it creates a fresh network
namespace, runs the real proxier (tracker -> renderer -> iptables-restore / nft)
inside it with `nsenter`, then loads the very same ruleset with
`iptables-restore` / `nft -f` alone in another fresh namespace. Every figure is
one JSON line on stdout. Root only; namespaces are deleted also on failure.

    .venv/bin/python bench/proxy_bench.py --sizes 1000 10000 --modes iptables nftables

With `--against upstream` each case runs twice, once with upstream's kube-proxy v1.31
(scripts/upstream-binaries.sh) and once with `pyk8s proxy`, each as a program in a fresh network
namespace of its own together with a fresh `pyk8s apiserver` (SQLite) on that namespace's
loopback, which holds the N Services and EndpointSlices before the proxy starts. Both proxies'
figures come from the same metric, kubeproxy_sync_proxy_rules_duration_seconds: the first sync
(full), the median of one-endpoint changes (EndpointSlice updates 2 s apart), and the proxy's RSS.

    .venv/bin/python bench/proxy_bench.py --against upstream --sizes 10000 --modes iptables nftables
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENDPOINTS = 10


def objects(n: int, endpoints: int = ENDPOINTS) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services, slices = [], []
    for i in range(n):
        ip = 0x0A600000 + i + 1  # 10.96.0.0/12
        cluster_ip = ".".join(str((ip >> s) & 255) for s in (24, 16, 8, 0))
        services.append({"metadata": {"namespace": "bench", "name": f"s{i}"},
                         "spec": {"clusterIP": cluster_ip, "type": "ClusterIP",
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        slices.append(endpoint_slice(i, [0x0A800000 + i * endpoints + j for j in range(endpoints)]))
    return services, slices


def endpoint_slice(i: int, addresses: list[int]) -> dict[str, Any]:
    return {"metadata": {"namespace": "bench", "name": f"s{i}-a",
                         "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [".".join(str((a >> s) & 255) for s in (24, 16, 8, 0))],
                           "nodeName": "node1" if a % 3 == 0 else "node2", "conditions": {"ready": True}}
                          for a in addresses]}


# -- inside the namespace -------------------------------------------------------------------------

async def inner(mode: str, variant: str, n: int, changes: int, dump: Path) -> None:
    import psutil

    from netproxy.config import ProxyConfig
    from netproxy.informer import stub
    from netproxy.memory import release_free_memory
    from netproxy.proxier import Proxier, make_backend

    config = ProxyConfig(node_name="node1", mode=mode, cluster_cidr="10.244.0.0/16", iptables_backend=variant,
                         healthz_bind_address="", metrics_bind_address="")
    backend = make_backend(config)
    proxier = Proxier(config, backend)
    services, slices = objects(n)
    t0 = time.monotonic()
    for s in services:
        proxier.on_service(s)
    for s in slices:
        proxier.on_slice(s)
    ingest = time.monotonic() - t0
    # the real proxy's informers keep a stub per object (netproxy.informer), not the objects: so does this
    # (keyed as the informer keys them: a new "namespace/name" string, not the object's own name string)
    informer_caches = {f"{kind}:{o['metadata']['namespace']}/{o['metadata']['name']}": stub(o)
                       for kind, objs in (("svc", services), ("eps", slices)) for o in objs}
    del services, slices
    scripts: list[str] = []  # the loader's input of the full sync, for the floor
    backend.script_hook = scripts.append  # type: ignore[attr-defined]
    t0 = time.monotonic()
    await proxier.sync(full=True)
    full = time.monotonic() - t0
    backend.script_hook = None  # type: ignore[attr-defined]
    rules = dict(proxier.metrics.rules)
    text = scripts.pop() if scripts else getattr(backend, "last_script", "")
    await asyncio.to_thread(dump.write_text, text)
    lines = text.count("\n")
    del text
    # the benchmark's own copy of the ruleset is not the proxy's: hand it back as the proxy hands back its own
    release_free_memory()
    latencies = []
    partial_scripts: list[str] = []
    for k in range(changes):
        if k == changes - 1 and mode != "ipvs":
            backend.script_hook = partial_scripts.append  # type: ignore[attr-defined]
        i = (k * 7919) % n
        addresses = [0x0A800000 + i * ENDPOINTS + j for j in range(ENDPOINTS)]
        addresses[k % ENDPOINTS] = 0x0AC00000 + k  # one endpoint replaced
        t0 = time.monotonic()
        proxier.on_slice(endpoint_slice(i, addresses))
        await proxier.sync()
        latencies.append(time.monotonic() - t0)
    backend.script_hook = None  # type: ignore[attr-defined]
    if partial_scripts:
        await asyncio.to_thread(dump.with_suffix(".partial").write_text, partial_scripts[-1])
    rss = psutil.Process().memory_info().rss
    # a full sync with the whole ruleset already in the kernel: a restart's first sync, the periodic resync
    t0 = time.monotonic()
    await proxier.sync(full=True)
    resync = time.monotonic() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert len(informer_caches) == 2 * n
    print(json.dumps({"ingest_s": round(ingest, 3), "full_sync_s": round(full, 3),
                      "change_sync_p50_s": round(statistics.median(latencies), 4) if latencies else None,
                      "change_sync_max_s": round(max(latencies), 4) if latencies else None,
                      "resync_full_s": round(resync, 3),
                      "rules": rules, "rss_mb": round(rss / 2**20, 1),
                      "rss_peak_mb": round(peak / 2**20, 1), "ruleset_lines": lines}),
          flush=True)


# -- against upstream: a proxy program, an API server, both inside the namespace -----------------

def proxy_argv(which: str, mode: str, kubeconfig: Path, metrics_port: int, healthz_port: int) -> list[str]:
    """The command line of one proxy as a program of its own, metrics and healthz on loopback."""
    if which == "kube-proxy":
        sys.path.insert(0, str(REPO / "bench"))
        import upstream

        return [str(upstream.binaries()["kube-proxy"]), f"--kubeconfig={kubeconfig}", "--hostname-override=node1",
                f"--proxy-mode={mode}", "--cluster-cidr=10.244.0.0/16", "--conntrack-max-per-core=0",
                f"--metrics-bind-address=127.0.0.1:{metrics_port}",
                f"--healthz-bind-address=127.0.0.1:{healthz_port}", "--v=0"]
    return [str(REPO / ".venv" / "bin" / "python"), "-m", "pyk8s.cli", "proxy", "--kubeconfig", str(kubeconfig),
            "--hostname-override", "node1", "--proxy-mode", mode, "--cluster-cidr", "10.244.0.0/16",
            "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
            "--healthz-bind-address", f"127.0.0.1:{healthz_port}"]


async def inner_against(which: str, mode: str, n: int, changes: int) -> None:
    import urllib.request

    sys.path.insert(0, str(REPO / "bench"))
    import upstream

    from controlplane.api import resources
    from controlplane.client import Client

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # this namespace's own loopback  # noqa: ASYNC221  (before any task runs)
    duration = "kubeproxy_sync_proxy_rules_duration_seconds"
    with tempfile.TemporaryDirectory() as tmp, upstream.pyk8s_apiserver(Path(tmp)) as server:
        async with Client.from_kubeconfig(server.kubeconfig) as client:
            await client.create(resources.NODES, {"metadata": {"name": "node1"}})
            await client.create(resources.NAMESPACES, {"metadata": {"name": "bench"}})
            services, slices = objects(n)
            for i, svc in enumerate(services):  # 10.96.0.1 is the API server's own `kubernetes` Service
                ip = 0x0A600000 + i + 16
                svc["spec"]["clusterIP"] = ".".join(str((ip >> s) & 255) for s in (24, 16, 8, 0))
            sem = asyncio.Semaphore(50)

            async def post(rt: Any, obj: dict[str, Any]) -> None:
                async with sem:
                    await client.create(rt, obj)

            t0 = time.monotonic()
            await asyncio.gather(*(post(resources.SERVICES, s) for s in services))
            await asyncio.gather(*(post(resources.ENDPOINTSLICES, s) for s in slices))
            load_s = time.monotonic() - t0
            del services
            mport, hport = upstream.free_port(), upstream.free_port()
            log = (Path(tmp) / "proxy.log").open("wb")
            started = time.monotonic()
            proc = subprocess.Popen(  # noqa: ASYNC220  (returns at once; polled below)
                proxy_argv(which, mode, server.kubeconfig, mport, hport), stdout=log,
                                    stderr=subprocess.STDOUT)

            def metrics() -> tuple[float, float]:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as resp:
                        text = resp.read().decode()
                except OSError:
                    return 0.0, 0.0
                return (upstream.parse_metric(text, duration + "_count") or 0.0,
                        upstream.parse_metric(text, duration + "_sum") or 0.0)

            async def next_sync(after: float, limit: float = 1800) -> tuple[float, float]:
                deadline = time.monotonic() + limit
                while time.monotonic() < deadline:
                    if proc.poll() is not None:
                        log.flush()
                        raise RuntimeError(f"{which} exited: {(Path(tmp) / 'proxy.log').read_text()[-1500:]}")
                    count, total = await asyncio.to_thread(metrics)
                    if count > after:
                        return count, total
                    await asyncio.sleep(0.2)
                raise RuntimeError(f"{which}: no sync within {limit} s")

            try:
                count, total = await next_sync(0)
                first_seen = time.monotonic() - started
                full = total / count  # the first sync(s): every Service at once
                await asyncio.sleep(3)
                count, total = await asyncio.to_thread(metrics)
                latencies = []
                for k in range(changes):
                    i = (k * 7919) % n
                    addresses = [0x0A800000 + i * ENDPOINTS + j for j in range(ENDPOINTS)]
                    addresses[k % ENDPOINTS] = 0x0AC00000 + k
                    current = await client.get(resources.ENDPOINTSLICES, f"s{i}-a", "bench")
                    current["endpoints"] = endpoint_slice(i, addresses)["endpoints"]
                    await client.update(resources.ENDPOINTSLICES, current)
                    new_count, new_total = await next_sync(count, 600)
                    latencies.append((new_total - total) / (new_count - count))
                    count, total = new_count, new_total
                    await asyncio.sleep(2)
                rss = upstream.rss_mb(proc.pid)
            finally:
                upstream.stop(proc)
                log.close()
    print(json.dumps({"objects_load_s": round(load_s, 1), "full_sync_s": round(full, 3),
                      "start_to_first_sync_s": round(first_seen, 2),
                      "change_sync_p50_s": round(statistics.median(latencies), 4),
                      "change_sync_max_s": round(max(latencies), 4), "rss_mb": rss}), flush=True)


def run_against(mode: str, n: int, changes: int) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import upstream

    results: dict[str, dict[str, Any]] = {}
    for which in ("kube-proxy", "pyk8s-proxy"):
        with Namespace() as ns:
            run = netns(ns, sys.executable, str(Path(__file__).resolve()), "--inner-against", which, "--mode", mode,
                        "--services", str(n), "--changes", str(changes))
        if run.returncode != 0:
            raise RuntimeError(f"{which} {mode} run failed: {run.stderr[-2000:]}")
        results[which] = json.loads(run.stdout.strip().splitlines()[-1])
        print(json.dumps({"bench": "proxy_sync", "proxy": which, "mode": mode, "services": n,
                          "endpoints_per_service": ENDPOINTS, **results[which]}), flush=True)
    ours, theirs = results["pyk8s-proxy"], results["kube-proxy"]
    keys = ("full_sync_s", "change_sync_p50_s", "change_sync_max_s", "rss_mb")
    print(json.dumps({"bench": "proxy_sync.vs_upstream", "ours": "pyk8s-proxy", "upstream": "kube-proxy",
                      "mode": mode, "services": n,
                      **{k: {"ours": ours[k], "upstream": theirs[k], "ratio": upstream.ratio(ours[k], theirs[k])}
                         for k in keys}}), flush=True)


# -- on the host ----------------------------------------------------------------------------------

def netns(name: str, *argv: str, stdin: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/var/run/netns/{name}", "--", *argv], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


class Namespace:
    def __init__(self) -> None:
        self.name = f"pxbench-{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> str:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def floor(mode: str, variant: str, ruleset: str, noflush: bool = True, on_top_of: str | None = None) -> float:
    """Seconds the bare loader takes for `ruleset`, in a fresh namespace (already holding `on_top_of`)."""
    with Namespace() as ns:
        if mode == "iptables":
            argv = [f"iptables-{variant}-restore", "-w", *(["--noflush"] if noflush else [])]
        else:
            argv = ["nft", "-f", "-"]
        if on_top_of is not None:
            loaded = netns(ns, *argv, stdin=on_top_of)
            if loaded.returncode != 0:
                raise RuntimeError(f"loading the full ruleset failed: {loaded.stderr[:500]}")
        t0 = time.monotonic()
        result = netns(ns, *argv, stdin=ruleset)
        elapsed = time.monotonic() - t0
        if result.returncode != 0:
            raise RuntimeError(f"floor load failed: {result.stderr[:500]}")
        return elapsed


def run_case(mode: str, variant: str, n: int, changes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, Namespace() as ns:
        dump = Path(tmp) / "ruleset"
        inner_run = netns(ns, sys.executable, str(Path(__file__).resolve()), "--inner", "--mode", mode,
                       "--variant", variant, "--services", str(n), "--changes", str(changes), "--dump", str(dump))
        if inner_run.returncode != 0:
            raise RuntimeError(f"inner run failed: {inner_run.stderr[-2000:]}")
        figures = json.loads(inner_run.stdout.strip().splitlines()[-1])
        ruleset = dump.read_text()
        partial_path = dump.with_suffix(".partial")
        partial = partial_path.read_text() if partial_path.exists() else None
    label = f"iptables-{variant}" if mode == "iptables" else mode
    if mode == "ipvs":  # no one-shot loader to compare with: virtual servers go one netlink request each
        return {"bench": "proxy_sync", "mode": label, "services": n, "endpoints_per_service": ENDPOINTS,
                **figures, "companion_table_load_s": round(floor(mode, variant, ruleset), 3)}
    loader = floor(mode, variant, ruleset)
    result = {"bench": "proxy_sync", "mode": label, "services": n, "endpoints_per_service": ENDPOINTS, **figures,
              "floor_load_s": round(loader, 3), "full_sync_vs_floor": round(figures["full_sync_s"] / loader, 2)}
    if partial is not None:
        # the last one-endpoint change's input, loaded alone onto the full ruleset: the change's floor
        result["change_floor_load_s"] = round(floor(mode, variant, partial, on_top_of=ruleset), 4)
    if mode == "iptables":
        # the proxy must use --noflush (other rules live in the same tables); DESIGN's floor did not
        result["floor_load_flushing_s"] = round(floor(mode, variant, ruleset, noflush=False), 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--modes", nargs="+", default=["iptables", "nftables"],
                        help="iptables (nft variant), iptables-legacy, nftables, ipvs (where the kernel has it)")
    parser.add_argument("--changes", type=int, default=5, help="one-endpoint changes timed per case")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="nft", help=argparse.SUPPRESS)
    parser.add_argument("--services", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--against", choices=["upstream"], help="also upstream's kube-proxy, both as programs")
    parser.add_argument("--inner-against", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_against:
        sys.path.insert(0, str(REPO))
        asyncio.run(inner_against(args.inner_against, args.mode, args.services, args.changes))
        return 0
    if args.inner:
        sys.path.insert(0, str(REPO))
        asyncio.run(inner(args.mode, args.variant, args.services, args.changes, args.dump))
        return 0
    if os.geteuid() != 0:
        print(json.dumps({"bench": "proxy_sync", "skipped": "needs root (network namespaces)"}))
        return 0
    if args.against == "upstream":
        for n in args.sizes:
            for label in args.modes:
                run_against(label, n, args.changes)
        return 0
    for n in args.sizes:
        for label in args.modes:
            mode, variant = ("iptables", "legacy") if label == "iptables-legacy" else (label, "nft")
            if mode == "ipvs":
                sys.path.insert(0, str(REPO))
                from netproxy.ipvs import ipvs_available

                available, why = ipvs_available()
                if not available:
                    print(json.dumps({"bench": "proxy_sync", "mode": "ipvs", "services": n, "skipped": why}),
                          flush=True)
                    continue
            print(json.dumps(run_case(mode, variant, n, args.changes)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
