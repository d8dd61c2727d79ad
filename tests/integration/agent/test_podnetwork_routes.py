"""host-gw routes to other nodes' podCIDRs, in a network namespace of the test's own.

`PodNetwork.sync_routes` runs in a child process entered into the namespace
(`nsenter --net`), so the host's routes are never read or touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.podnetwork import ROUTE_PROTOCOL

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None or shutil.which("nsenter") is None,
                       reason="iproute2 and nsenter are needed"),
]

REPO = Path(__file__).resolve().parents[3]


def node(name: str, cidr: str | None, address: str | None) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": address}] if address else []}}


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pyk8s-rt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # a veth pair made inside the namespace (no dummy module on every kernel); nothing in the host's
        for cmd in (["link", "set", "lo", "up"], ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                    ["addr", "add", "10.123.0.2/24", "dev", "v0"], ["link", "set", "v1", "up"],
                    ["link", "set", "v0", "up"]):
            subprocess.run(["ip", "-n", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True)


def routes(ns: str) -> dict[str, tuple[str, str]]:
    out = subprocess.run(["ip", "-n", ns, "-4", "-j", "route", "show"], check=True, capture_output=True,
                         text=True).stdout
    return {r["dst"]: (r.get("gateway", ""), str(r.get("protocol", ""))) for r in json.loads(out or "[]")}


def sync(ns: str, nodes: list[dict[str, object]]) -> None:
    code = ("import json, sys\nfrom pathlib import Path\nfrom agent.podnetwork import PodNetwork\n"
            "PodNetwork(Path('/nonexistent'), 'br', Path('/nonexistent'), 'node1')"
            ".sync_routes(json.loads(sys.stdin.read()))\n")
    subprocess.run(["nsenter", f"--net=/var/run/netns/{ns}", "--", sys.executable, "-c", code], check=True,
                   input=json.dumps(nodes), text=True, cwd=REPO, timeout=60)


def test_sync_routes_adds_replaces_and_removes_only_its_own(netns: str) -> None:
    ip(netns, "route", "add", "10.200.0.0/24", "via", "10.123.0.1")  # not ours: stays
    ip(netns, "route", "add", "10.201.0.0/24", "via", "10.123.0.1", "proto", str(ROUTE_PROTOCOL))  # stale
    ip(netns, "route", "add", "10.244.1.0/24", "via", "10.123.0.9", "proto", str(ROUTE_PROTOCOL))  # wrong via
    ip(netns, "route", "add", "10.202.0.5/32", "via", "10.123.0.1", "proto", str(ROUTE_PROTOCOL))  # stale host

    sync(netns, [node("node1", "10.244.0.0/24", "10.123.0.2"),   # this node: no route
                 node("node2", "10.244.1.0/24", "10.123.0.3"),
                 node("node3", "10.244.2.0/24", "10.123.0.4"),
                 node("node4", "10.244.3.0/24", "192.0.2.9"),    # not on our link: skipped with a warning
                 node("node5", None, "10.123.0.6")])             # no podCIDR yet
    found = routes(netns)
    ours = {dst: via for dst, (via, proto) in found.items() if proto == str(ROUTE_PROTOCOL)}
    assert ours == {"10.244.1.0/24": "10.123.0.3", "10.244.2.0/24": "10.123.0.4"}
    assert found["10.200.0.0/24"][0] == "10.123.0.1"

    sync(netns, [node("node1", "10.244.0.0/24", "10.123.0.2"), node("node3", "10.244.2.0/24", "10.123.0.4")])
    found = routes(netns)
    assert {dst for dst, (_via, proto) in found.items() if proto == str(ROUTE_PROTOCOL)} == {"10.244.2.0/24"}
    assert "10.200.0.0/24" in found
