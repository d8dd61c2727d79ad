"""A node, its pods and a client, as network namespaces, for the proxy's traffic tests.

Everything is created inside namespaces this module names uniquely; nothing is
created in or moved out of the host namespace (veth pairs are created inside
the node namespace with `ip -n`, their peers go straight into the other
namespace). Topology:

    client ns (192.168.77.2) --veth-- node ns (192.168.77.1; bridge kbr0 10.244.1.1/24)
                                         |-- backend ns b1 (10.244.1.11)
                                         |-- backend ns b2 (10.244.1.12)

The node routes the service CIDR to a sink namespace (a packet no rule claims is
lost there, never sent out), forwards between its legs, and is where the proxy
programs its rules. Backends answer TCP (8080) and UDP (5353) with
"<name> <peer ip>".
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
NODE_IP = "192.168.77.1"
CLIENT_IP = "192.168.77.2"
BRIDGE_IP = "10.244.1.1"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
BACKENDS = {"b1": "10.244.1.11", "b2": "10.244.1.12"}

SERVER = r"""
import socket, sys, threading
name = sys.argv[1]
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 8080)); tcp.listen(64)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 5353))
def serve_udp():
    while True:
        data, peer = udp.recvfrom(100)
        udp.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=serve_udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, peer = tcp.accept()
    try:
        c.sendall(f"{name} {peer[0]}".encode())
    finally:
        c.close()
"""

CLIENT = r"""
import errno, json, socket, sys
req = json.loads(sys.argv[1])
out = []
for i in range(req["count"]):
    try:
        if req.get("proto") == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if req.get("sport"):
                s.bind(("0.0.0.0", req["sport"]))
            s.settimeout(req.get("timeout", 2))
            s.sendto(b"hi", (req["host"], req["port"]))
            out.append(s.recv(100).decode())
        else:
            s = socket.create_connection((req["host"], req["port"]), timeout=req.get("timeout", 2))
            s.settimeout(req.get("timeout", 2))
            out.append(s.recv(100).decode())
        s.close()
    except ConnectionRefusedError:
        out.append("refused")
    except (TimeoutError, socket.timeout):
        out.append("timeout")
    except OSError as e:
        out.append("error " + errno.errorcode.get(e.errno or 0, str(e)))
print(json.dumps(out))
"""


def missing_tools(mode: str, variant: str | None) -> str | None:
    """Why this mode cannot be tested here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and netfilter)"
    needed = ["ip", "nsenter", "conntrack"]
    if mode == "iptables":
        needed += [f"iptables-{variant}", f"iptables-{variant}-restore", f"iptables-{variant}-save"]
    elif mode == "ipvs":
        needed += ["nft", "ipvsadm"]
    else:
        needed += ["nft"]
    absent = [t for t in needed if shutil.which(t) is None]
    if absent:
        return f"missing tools: {', '.join(absent)}"
    if mode == "ipvs":
        from netproxy.ipvs import ipvs_available

        available, why = ipvs_available()
        if not available:
            return f"IPVS mode cannot be exercised on this machine: {why}"
    return None


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@dataclass
class ProxyProcess:
    """`python -m netproxy.feed` inside the node namespace: one JSON state in, one sync reply out."""

    proc: subprocess.Popen[str]

    def apply(self, services: list[dict[str, Any]], slices: list[dict[str, Any]], timeout: float = 60) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"services": services, "endpointSlices": slices}) + "\n")
        self.proc.stdin.flush()
        reply: list[str] = []
        reader = threading.Thread(target=lambda: reply.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not reply or not reply[0]:
            raise AssertionError(f"proxy gave no reply within {timeout}s: {self.stderr()}")
        result: dict = json.loads(reply[0])
        assert result["ok"], result
        return result

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    proxies: list[ProxyProcess] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"pxn-{self.tag}"

    @property
    def client(self) -> str:
        return f"pxc-{self.tag}"

    @property
    def sink(self) -> str:
        return f"pxs-{self.tag}"

    def backend(self, name: str) -> str:
        return f"px{name}-{self.tag}"

    def namespaces(self) -> list[str]:
        return [self.node, self.client, self.sink, *(self.backend(b) for b in BACKENDS)]

    def in_ns(self, ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("nsenter", f"--net=/var/run/netns/{ns}", "--", *argv, check=check)

    # -- building and removing -----------------------------------------------------------

    def create(self) -> None:
        for ns in self.namespaces():
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        node = self.node
        _run("ip", "-n", node, "link", "add", "kbr0", "type", "bridge")
        _run("ip", "-n", node, "addr", "add", f"{BRIDGE_IP}/24", "dev", "kbr0")
        _run("ip", "-n", node, "link", "set", "kbr0", "up")
        for name, ip in BACKENDS.items():
            ns = self.backend(name)
            _run("ip", "-n", node, "link", "add", f"v{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", node, "link", "set", f"v{name}", "master", "kbr0", "up")
            # as the CNI bridge plugin does with hairpinMode: a pod may reach itself through a service
            _run("ip", "-n", node, "link", "set", f"v{name}", "type", "bridge_slave", "hairpin", "on")
            _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "route", "add", "default", "via", BRIDGE_IP)
        _run("ip", "-n", node, "link", "add", "vclient", "type", "veth", "peer", "name", "eth0", "netns",
             self.client)
        _run("ip", "-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "vclient")
        _run("ip", "-n", node, "link", "set", "vclient", "up")
        _run("ip", "-n", self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        _run("ip", "-n", self.client, "link", "set", "eth0", "up")
        _run("ip", "-n", self.client, "route", "add", "default", "via", NODE_IP)
        # the service CIDR leads to a namespace that drops what it gets (no forwarding, no listener)
        _run("ip", "-n", node, "link", "add", "vsink", "type", "veth", "peer", "name", "eth0", "netns", self.sink)
        _run("ip", "-n", node, "addr", "add", "169.254.99.1/30", "dev", "vsink")
        _run("ip", "-n", node, "link", "set", "vsink", "up")
        _run("ip", "-n", self.sink, "addr", "add", "169.254.99.2/30", "dev", "eth0")
        _run("ip", "-n", self.sink, "link", "set", "eth0", "up")
        _run("ip", "-n", node, "route", "add", SERVICE_CIDR, "via", "169.254.99.2")
        self.in_ns(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for name in BACKENDS:
            self.start_backend(name)

    def start_backend(self, name: str) -> None:
        proc = subprocess.Popen(["nsenter", f"--net=/var/run/netns/{self.backend(name)}", "--", sys.executable,
                                 "-c", SERVER, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"backend {name} did not start: {proc.stderr.read() if proc.stderr else ''}")

    def destroy(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        for ns in self.namespaces():
            _run("ip", "netns", "del", ns, check=False)

    # -- the proxy and traffic -------------------------------------------------------------

    def start_proxy(self, mode: str, variant: str | None, *extra: str) -> ProxyProcess:
        argv = ["nsenter", f"--net=/var/run/netns/{self.node}", "--", sys.executable, "-m", "netproxy.feed",
                "--proxy-mode", mode, "--node-name", "node1", "--cluster-cidr", CLUSTER_CIDR,
                "--healthz-bind-address", "", "--metrics-bind-address", "", *extra]
        if variant:
            argv += ["--iptables-backend", variant]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, env=env)
        proxy = ProxyProcess(proc)
        self.proxies.append(proxy)
        return proxy

    def request(self, host: str, port: int, count: int = 1, proto: str = "tcp", ns: str | None = None,
                sport: int = 0, timeout: float = 2) -> list[str]:
        req = {"host": host, "port": port, "count": count, "proto": proto, "sport": sport, "timeout": timeout}
        result = self.in_ns(ns or self.client, sys.executable, "-c", CLIENT, json.dumps(req))
        answers: list[str] = json.loads(result.stdout)
        return answers

    def ruleset(self, mode: str, variant: str | None) -> str:
        if mode == "iptables":
            return self.in_ns(self.node, f"iptables-{variant}-save").stdout
        if mode == "ipvs":  # virtual servers, kube-ipvs0's addresses, then the companion table
            return "\n".join([self.in_ns(self.node, "ipvsadm", "-Ln").stdout,
                              self.in_ns(self.node, "ip", "-4", "addr", "show", "dev", "kube-ipvs0",
                                         check=False).stdout,
                              self.in_ns(self.node, "nft", "list", "ruleset").stdout])
        return self.in_ns(self.node, "nft", "list", "ruleset").stdout


@contextmanager
def lab() -> Iterator[Lab]:
    the_lab = Lab()
    try:
        the_lab.create()
        yield the_lab
    finally:
        the_lab.destroy()


def service(name: str, cluster_ip: str, port: int = 80, protocol: str = "TCP", node_port: int = 0,
            **spec: Any) -> dict[str, Any]:
    ports: dict[str, Any] = {"name": "p", "port": port, "protocol": protocol}
    if node_port:
        ports["nodePort"] = node_port
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": cluster_ip, "type": "NodePort" if node_port else "ClusterIP",
                     "ports": [ports], **spec}}


def endpoint_slice(service_name: str, backends: dict[str, str], port: int = 8080, protocol: str = "TCP",
                   name: str | None = None) -> dict[str, Any]:
    """backends: backend name (b1/b2) -> node name of that endpoint."""
    return {"metadata": {"namespace": "default", "name": name or f"{service_name}-x",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": [{"name": "p", "port": port, "protocol": protocol}],
            "endpoints": [{"addresses": [BACKENDS[b]], "nodeName": node, "conditions": {"ready": True}}
                          for b, node in backends.items()]}


CLONE_NEWNET = 0x40000000


def listen_in_namespace(ns: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket that lives in namespace `ns` (made by a short-lived thread that joins it)."""
    made: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/var/run/netns/{ns}") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
            sock.setblocking(False)
            made.append(sock)
        except BaseException as exc:
            made.append(exc)

    thread = threading.Thread(target=make)  # the thread ends in `ns`; the process stays where it was
    thread.start()
    thread.join(10)
    if not made or isinstance(made[0], BaseException):
        raise RuntimeError(f"could not listen in {ns}: {made[0] if made else 'timeout'}")
    return made[0]


class Relay:
    """Forwards TCP from 127.0.0.1:port inside a namespace to 127.0.0.1:port of the host namespace.

    The test's API server listens on the host's loopback; a proxy in the node
    namespace reaches it through this relay, and the test can cut the wire
    (stop) and mend it (start) to play an API server outage.
    """

    def __init__(self, ns: str, port: int) -> None:
        self.ns, self.port = ns, port
        self.server: asyncio.base_events.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        sock = listen_in_namespace(self.ns, "127.0.0.1", self.port)
        self.server = await asyncio.start_server(self._handle, sock=sock)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        for task in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
