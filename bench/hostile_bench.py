"""Hostile-client stress check of the API server's connection limits: prints one JSON line per attack.

The API server runs in its own process (`pyk8s apiserver`, default limits unless flags are passed through)
on loopback. During each attack another client polls /readyz back to back; each line gives the server's
RSS before the attack, 1 s and 5 s after it, and that client's worst and p99 /readyz latency. Everything is bounded
in count and time and goes to 127.0.0.1 only.

Attacks: slowloris (connections trickling their headers), handshake floods (waves of TCP connections
that never send a TLS ClientHello, or only its first bytes), slow bodies, 200 concurrent clients listing, large YAML bodies, and
YAML alias bombs.

    .venv/bin/python bench/hostile_bench.py [--waves 8] [--wave-size 1000] [--slowloris 200] [--clients 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parents[1]
CM = "/api/v1/namespaces/default/configmaps"
PROBE_TIMEOUT = 10.0
SETTLE_SECONDS = 5.0  # RSS is read 1 s and this long after each attack


def emit(name: str, **values: object) -> None:
    print(json.dumps({"bench": f"hostile.{name}", **values}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Target:
    def __init__(self, port: int, data: Path, pid: int) -> None:
        self.port = port
        self.url = f"https://127.0.0.1:{port}"
        self.pid = pid
        self.ctx = ssl.create_default_context(cafile=str(data / "pki" / "ca.crt"))
        config = yaml.safe_load((data / "admin.kubeconfig").read_text())
        self.token = str(config["users"][0]["user"]["token"])

    def session(self, **kw: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(base_url=self.url, connector=aiohttp.TCPConnector(ssl=self.ctx, limit=0),
                                     headers={"Authorization": f"Bearer {self.token}"}, **kw)


async def probe(target: Target, stop: asyncio.Event, samples: list[float]) -> None:
    """Another client's /readyz latency, back to back, until `stop`."""
    async with target.session(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)) as http:
        while not stop.is_set():
            started = time.monotonic()
            try:
                async with http.get("/readyz") as resp:
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                pass  # counted at its full duration below
            samples.append(time.monotonic() - started)
            await asyncio.sleep(0.02)


async def attack(name: str, target: Target, run: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    before = rss_mb(target.pid)
    stop = asyncio.Event()
    samples: list[float] = []
    prober = asyncio.create_task(probe(target, stop, samples))
    started = time.monotonic()
    try:
        extra = await run()
    finally:
        stop.set()
        await prober
    seconds = round(time.monotonic() - started, 1)
    await asyncio.sleep(1.0)
    after = rss_mb(target.pid)
    await asyncio.sleep(SETTLE_SECONDS - 1.0)  # the server trims its heap about a second after a burst
    ordered = sorted(samples) or [0.0]
    emit(name, seconds=seconds, rss_mb_before=before, rss_mb_after_1s=after, rss_mb_settled=rss_mb(target.pid),
         readyz_probes=len(samples), readyz_worst_ms=round(ordered[-1] * 1000, 1),
         readyz_p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1), **extra)


async def slowloris(target: Target, count: int, limit: float) -> dict[str, Any]:
    """`count` TLS connections each sending one header byte a second; how long until the server cuts them."""
    cut: list[float] = []

    async def one() -> None:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", target.port, ssl=target.ctx,
                                                           server_hostname="127.0.0.1")
        except OSError:
            return
        try:
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.monotonic() - started < limit:
                writer.write(b"a")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        break
                except TimeoutError:
                    continue
            else:
                return
            cut.append(time.monotonic() - started)
        except (OSError, ConnectionError):
            cut.append(time.monotonic() - started)
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return {"connections": count, "cut_by_server": len(cut), "cut_after_s_max": round(max(cut, default=0), 1)}


CLIENT_HELLO_START = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # a record and handshake header, no more


async def handshake_flood(target: Target, waves: int, size: int, hold: float,
                          partial_hello: bool = False) -> dict[str, Any]:
    """Waves of `size` TCP connections that never finish TLS — silent, or with the first bytes of a
    ClientHello — each held `hold` seconds."""
    refused_or_cut = 0
    loop = asyncio.get_running_loop()
    for _ in range(waves):
        socks: list[socket.socket] = []
        for _ in range(size):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", target.port)), 1.0)
                if partial_hello:
                    sock.send(CLIENT_HELLO_START)
            except (OSError, TimeoutError):
                pass
            socks.append(sock)
        await asyncio.sleep(hold)
        for sock in socks:
            try:
                refused_or_cut += sock.recv(1) == b""  # b"": the server closed it
            except BlockingIOError:
                pass  # still open, still waiting for our ClientHello
            except OSError:
                refused_or_cut += 1
            sock.close()
    return {"waves": waves, "per_wave": size, "held_s": hold, "closed_by_server": refused_or_cut}


async def slow_bodies(target: Target, count: int, limit: float) -> dict[str, Any]:
    """`count` requests announcing a 1 MB body and sending one byte a second."""
    answers: dict[str, int] = {}

    async def one() -> None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port, ssl=target.ctx,
                                                       server_hostname="127.0.0.1")
        try:
            writer.write(f"POST {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {target.token}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{".encode())
            while time.monotonic() - started < limit:
                writer.write(b" ")
                await writer.drain()
                try:
                    head = await asyncio.wait_for(reader.read(64), 1.0)
                except TimeoutError:
                    continue
                key = head[9:12].decode() if head else "closed"
                answers[key] = answers.get(key, 0) + 1
                return
            answers["open"] = answers.get("open", 0) + 1
        except (OSError, ConnectionError):
            answers["reset"] = answers.get("reset", 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return {"connections": count, "answers": answers}


async def many_clients(target: Target, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` sessions, each with its own connection, listing ConfigMaps back to back."""
    done = 0
    errors = 0

    async def one() -> None:
        nonlocal done, errors
        async with target.session(timeout=aiohttp.ClientTimeout(total=30)) as http:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    async with http.get(CM) as resp:
                        await resp.read()
                        done += resp.status == 200
                        errors += resp.status != 200
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1

    await asyncio.gather(*(one() for _ in range(clients)))
    return {"clients": clients, "lists_per_s": round(done / seconds, 1), "errors": errors}


async def bodies(target: Target, body: bytes, count: int, ctype: str) -> dict[str, Any]:
    codes: dict[str, int] = {}

    async def one(index: int) -> None:
        async with target.session(timeout=aiohttp.ClientTimeout(total=120)) as http:
            async with http.post(CM, data=body.replace(b"NAME", f"b{index}-{time.monotonic_ns()}".encode()),
                                 headers={"Content-Type": ctype}) as resp:
                await resp.read()
                codes[str(resp.status)] = codes.get(str(resp.status), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    return {"bodies": count, "body_bytes": len(body), "codes": codes, "all_answered_s": round(
        time.monotonic() - started, 2)}


def large_yaml(size: int) -> bytes:
    lines = ["metadata: {name: NAME}", "data:"]
    total, i = 0, 0
    while total < size:
        lines.append(f"  key{i}: value-{i:08d}-xxxxxxxxxxxxxxxx")
        total += len(lines[-1]) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()


def alias_bomb() -> bytes:
    rows = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"  {cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return ("metadata: {name: NAME}\ndata: {}\nx:\n" + "\n".join(rows) + "\n").encode()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waves", type=int, default=8)
    parser.add_argument("--wave-size", type=int, default=1000)
    parser.add_argument("--wave-hold", type=float, default=3.0)
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--slow-limit", type=float, default=75.0, help="seconds a slow client keeps trying")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--attacks", default="slowloris,handshake_flood,partial_hello_flood,slow_body,"
                        "concurrent_clients,large_yaml,alias_bomb", help="comma-separated, in this order")
    parser.add_argument("server_flags", nargs="*", help="passed to `pyk8s apiserver` (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "server"
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pyk8s.cli", "apiserver", "--data-dir", str(data), "--secure-port", str(port),
            *args.server_flags, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            for _ in range(200):
                if (data / "admin.kubeconfig").exists():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            target = Target(port, data, server.pid)
            emit("start", rss_mb=rss_mb(server.pid))
            runs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
                "slowloris": lambda: slowloris(target, args.slowloris, args.slow_limit),
                "handshake_flood": lambda: handshake_flood(target, args.waves, args.wave_size, args.wave_hold),
                "partial_hello_flood": lambda: handshake_flood(target, args.waves, args.wave_size, args.wave_hold,
                                                               partial_hello=True),
                "slow_body": lambda: slow_bodies(target, 50, args.slow_limit),
                "concurrent_clients": lambda: many_clients(target, args.clients, 10.0),
                "large_yaml": lambda: bodies(target, large_yaml(2_800_000), 4, "application/yaml"),
                "alias_bomb": lambda: bodies(target, alias_bomb(), 20, "application/yaml"),
            }
            for name in args.attacks.split(","):
                await attack(name, target, runs[name])
            emit("end", rss_mb=rss_mb(server.pid))
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 30)


if __name__ == "__main__":
    asyncio.run(main())
