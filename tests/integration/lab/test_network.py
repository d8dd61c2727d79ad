"""The lab's wire, for real: namespaces on a bridge, reachable from each other, refused outside."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from lab import network
from lab.network import LabNetwork

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(1); print("ready", flush=True)
s.settimeout(20)
c, addr = s.accept(); c.sendall(("hello " + addr[0]).encode()); c.close()
"""

CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(s.recv(100).decode())
"""


def in_ns(net: LabNetwork, node: str, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={net.netns_path(node)}", "--", *argv],
                          capture_output=True, text=True, timeout=30, **kw)  # type: ignore[call-overload]


@pytest.fixture
def lab_net() -> Iterator[LabNetwork]:
    net = LabNetwork(name="t" + uuid.uuid4().hex[:4], subnet="10.99.201.0/24")
    try:
        network.create_bridge(net)
        network.add_node(net, "n1", 1)
        network.add_node(net, "n2", 2)
        yield net
    finally:
        network.teardown(net)
        assert network.lab_namespaces(net) == []
        assert network.lab_host_veths(net) == []


def test_nodes_reach_each_other_over_the_bridge(lab_net: LabNetwork) -> None:
    server = subprocess.Popen(["nsenter", f"--net={lab_net.netns_path('n2')}", "--", sys.executable, "-c",
                               ECHO_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        result = in_ns(lab_net, "n1", sys.executable, "-c", CLIENT, lab_net.node_ip(2), "7000")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"hello {lab_net.node_ip(1)}"
    finally:
        server.kill()
        server.wait()


def test_cluster_addresses_are_refused_not_routed(lab_net: LabNetwork) -> None:
    routes = in_ns(lab_net, "n1", "ip", "route").stdout
    assert f"unreachable {lab_net.cluster_cidr}" in routes
    assert "default" not in routes
    local = in_ns(lab_net, "n1", "ip", "route", "show", "table", "local").stdout
    assert f"local {lab_net.service_cidr} dev lo" in local
    pod_address = in_ns(lab_net, "n1", sys.executable, "-c", CLIENT, "10.244.7.7", "80")
    assert pod_address.returncode != 0
    assert "No route to host" in pod_address.stderr or "unreachable" in pod_address.stderr.lower()
    service_address = in_ns(lab_net, "n1", sys.executable, "-c", CLIENT, "10.96.0.10", "80")
    assert service_address.returncode != 0 and "Connection refused" in service_address.stderr


def test_a_bridge_that_is_not_ours_is_never_adopted_or_removed(lab_net: LabNetwork) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=lab_net.bridge)[0]
        ipr.link("set", index=index, ifalias="someone-else")
    try:
        with pytest.raises(RuntimeError, match="not this lab's bridge"):
            network.create_bridge(lab_net)
        with pytest.raises(RuntimeError, match="not this lab's bridge"):
            network.remove_bridge(lab_net)
        with IPRoute() as ipr:
            assert ipr.link_lookup(ifname=lab_net.bridge) == [index]
    finally:
        with IPRoute() as ipr:
            ipr.link("set", index=index, ifalias=network.BRIDGE_ALIAS_PREFIX + lab_net.name)


def test_a_subnet_the_host_already_routes_is_refused(lab_net: LabNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    other = LabNetwork(name="u" + uuid.uuid4().hex[:4], subnet=lab_net.subnet)
    with pytest.raises(RuntimeError, match=f"lab subnet {lab_net.subnet} overlaps the host's route "
                                           f"{lab_net.subnet} dev {lab_net.bridge}"):
        network.create_bridge(other)
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        assert ipr.link_lookup(ifname=other.bridge) == []  # nothing made for it
    network.create_bridge(lab_net)  # the lab's own bridge is adopted again, its route is its own
    first_octets, taken = ".".join(lab_net.subnet.split(".")[:2]), int(lab_net.subnet.split(".")[2])
    draws = iter([taken, taken, 57])  # the lab's own /24 twice, then one nobody routes
    monkeypatch.setattr(network.random, "randint", lambda _a, _b: next(draws))
    assert network.free_subnet(first_octets) == f"{first_octets}.57.0/24"
