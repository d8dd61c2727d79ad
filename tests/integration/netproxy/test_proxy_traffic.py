"""Real traffic through rules the proxy programs in a node namespace, for every mode that runs here.

Each test builds its own namespaces (proxy_lab), runs `python -m netproxy.feed`
inside the node namespace (the real backend code, fed objects on stdin instead
of from an API server) and sends bounded numbers of requests from a client
namespace. IPVS mode runs the same tests where the kernel has ip_vs; elsewhere
(this machine) each of its cases is skipped with the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import psutil
import pytest
from proxy_lab import (
    BACKENDS,
    BRIDGE_IP,
    CLIENT_IP,
    NODE_IP,
    Lab,
    endpoint_slice,
    lab,
    missing_tools,
    service,
)

from netproxy.iptables_render import JUMP_RULES

pytestmark = [pytest.mark.root, pytest.mark.slow]

MODES = [("iptables", "nft"), ("iptables", "legacy"), ("nftables", None), ("ipvs", None)]
IDS = ["iptables-nft", "iptables-legacy", "nftables", "ipvs"]


@pytest.fixture(params=MODES, ids=IDS)
def mode(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    reason = missing_tools(*request.param)
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return request.param


@pytest.fixture
def node_lab() -> Iterator[Lab]:
    with lab() as the_lab:
        yield the_lab


def names(answers: list[str]) -> set[str]:
    return {a.split()[0] for a in answers}


def test_cluster_ip_and_node_port_reach_every_endpoint(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    proxy.apply([service("web", "10.96.0.10", node_port=30080)],
                [endpoint_slice("web", {"b1": "node1", "b2": "node2"})])
    answers = node_lab.request("10.96.0.10", 80, count=40)
    assert names(answers) == {"b1", "b2"}, answers
    # from outside the cluster CIDR: masqueraded to the node's address on the pod bridge
    assert {a.split()[1] for a in answers} == {BRIDGE_IP}
    answers = node_lab.request(NODE_IP, 30080, count=40)
    assert names(answers) == {"b1", "b2"}, answers
    # from the node itself (OUTPUT path)
    answers = node_lab.request("10.96.0.10", 80, count=20, ns=node_lab.node)
    assert names(answers) == {"b1", "b2"}, answers


def test_session_affinity_sticks(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    proxy.apply([service("sticky", "10.96.0.11", sessionAffinity="ClientIP")],
                [endpoint_slice("sticky", {"b1": "node1", "b2": "node2"})])
    answers = node_lab.request("10.96.0.11", 80, count=30)
    assert len(names(answers)) == 1 and names(answers) <= set(BACKENDS), answers


def test_external_traffic_policy_local_keeps_the_client_ip(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    proxy.apply([service("local", "10.96.0.12", node_port=30012, externalTrafficPolicy="Local"),
                 service("cluster", "10.96.0.13", node_port=30013)],
                [endpoint_slice("local", {"b1": "node1", "b2": "node2"}),
                 endpoint_slice("cluster", {"b1": "node1"})])
    answers = node_lab.request(NODE_IP, 30012, count=30)
    assert set(answers) == {f"b1 {CLIENT_IP}"}, answers  # only the endpoint on node1, client IP kept
    answers = node_lab.request(NODE_IP, 30013, count=5)
    assert set(answers) == {f"b1 {BRIDGE_IP}"}, answers  # Cluster policy: masqueraded


def test_service_without_endpoints_is_refused(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    proxy.apply([service("empty", "10.96.0.14", node_port=30014)], [])
    assert node_lab.request("10.96.0.14", 80, count=3, timeout=5) == ["refused"] * 3
    assert node_lab.request(NODE_IP, 30014, count=3, timeout=5) == ["refused"] * 3
    assert node_lab.request("10.96.0.14", 80, count=1, ns=node_lab.node, timeout=5) == ["refused"]


def test_endpoint_removal_takes_effect(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    svc = service("shrink", "10.96.0.15")
    proxy.apply([svc], [endpoint_slice("shrink", {"b1": "node1", "b2": "node2"})])
    assert names(node_lab.request("10.96.0.15", 80, count=30)) == {"b1", "b2"}
    proxy.apply([svc], [endpoint_slice("shrink", {"b2": "node2"})])
    assert names(node_lab.request("10.96.0.15", 80, count=30)) == {"b2"}
    proxy.apply([svc], [])
    assert node_lab.request("10.96.0.15", 80, count=2, timeout=5) == ["refused"] * 2


def test_hairpin_traffic_is_masqueraded(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    proxy.apply([service("self", "10.96.0.16")], [endpoint_slice("self", {"b1": "node1"})])
    answers = node_lab.request("10.96.0.16", 80, count=3, ns=node_lab.backend("b1"))
    assert answers == [f"b1 {BRIDGE_IP}"] * 3


def test_udp_switches_endpoint_after_conntrack_cleanup(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    svc = service("dns", "10.96.0.17", port=53, protocol="UDP")
    proxy.apply([svc], [endpoint_slice("dns", {"b1": "node1"}, port=5353, protocol="UDP")])
    first = node_lab.request("10.96.0.17", 53, count=3, proto="udp", sport=40053)
    assert names(first) == {"b1"}, first
    proxy.apply([svc], [endpoint_slice("dns", {"b2": "node2"}, port=5353, protocol="UDP")])
    # same client socket tuple: only a flushed conntrack entry lets it reach b2 (b1 is still up)
    after = node_lab.request("10.96.0.17", 53, count=3, proto="udp", sport=40053)
    assert names(after) == {"b2"}, after


def test_udp_service_that_gets_endpoints_starts_answering(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    svc = service("late", "10.96.0.18", port=53, protocol="UDP")
    proxy.apply([svc], [])
    assert node_lab.request("10.96.0.18", 53, count=1, proto="udp", sport=40054) != ["b1"]
    proxy.apply([svc], [endpoint_slice("late", {"b1": "node1"}, port=5353, protocol="UDP")])
    assert names(node_lab.request("10.96.0.18", 53, count=2, proto="udp", sport=40054)) == {"b1"}


def test_restart_removes_stale_rules_and_keeps_wanted_and_foreign_ones(
        node_lab: Lab, mode: tuple[str, str | None]) -> None:
    kind, variant = mode
    keep, drop = service("keep", "10.96.0.20"), service("drop", "10.96.0.21")
    slices = [endpoint_slice("keep", {"b1": "node1"}), endpoint_slice("drop", {"b2": "node2"})]
    first = node_lab.start_proxy(*mode)
    first.apply([keep, drop], slices)
    assert names(node_lab.request("10.96.0.21", 80, count=3)) == {"b2"}
    first.stop()
    # someone else's rules in the same namespace must survive the proxy
    if kind == "iptables":
        node_lab.in_ns(node_lab.node, f"iptables-{variant}", "-t", "nat", "-N", "FOREIGN-CHAIN")
        node_lab.in_ns(node_lab.node, f"iptables-{variant}", "-t", "filter", "-A", "INPUT", "-p", "tcp",
                       "--dport", "9999", "-j", "ACCEPT")
    else:
        node_lab.in_ns(node_lab.node, "nft", "add table ip foreign; add chain ip foreign c; "
                       "add rule ip foreign c tcp dport 9999 accept")
    if kind == "ipvs":  # a virtual server on a node address outside the NodePort range is not the proxy's
        node_lab.in_ns(node_lab.node, "ipvsadm", "-A", "-t", f"{NODE_IP}:9999", "-s", "wlc")
    before = node_lab.ruleset(*mode)
    assert "10.96.0.21" in before
    second = node_lab.start_proxy(*mode)
    second.apply([keep], [slices[0]])
    after = node_lab.ruleset(*mode)
    assert "10.96.0.21" not in after and "10.96.0.20" in after
    assert names(node_lab.request("10.96.0.20", 80, count=3)) == {"b1"}
    assert node_lab.request("10.96.0.21", 80, count=1, timeout=1) == ["timeout"]  # nobody claims it now
    if kind == "iptables":
        assert ":FOREIGN-CHAIN" in after and "--dport 9999 -j ACCEPT" in after
        for jump in JUMP_RULES:  # each jump exactly once after the restart, in the form the proxy looks for
            assert after.count(jump.saved_form() + "\n") == 1, jump
        import re

        stale = set(re.findall(r"^:(KUBE-(?:SVC|SEP|EXT|SVL)-\S+)", before, re.M)) - \
            set(re.findall(r"^:(KUBE-(?:SVC|SEP|EXT|SVL)-\S+)", after, re.M))
        assert len(stale) == 2  # drop's KUBE-SVC and KUBE-SEP chains
    else:
        assert "table ip foreign" in after and "tcp dport 9999 accept" in after
    if kind == "ipvs":
        assert f"TCP  {NODE_IP}:9999 wlc" in after


def test_external_ips_and_internal_traffic_policy_local(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode)
    proxy.apply([service("ext", "10.96.0.22", externalIPs=["192.168.88.10"]),
                 service("ext-empty", "10.96.0.23", externalIPs=["192.168.88.11"]),
                 service("itp", "10.96.0.24", internalTrafficPolicy="Local")],
                [endpoint_slice("ext", {"b2": "node2"}), endpoint_slice("itp", {"b1": "node1", "b2": "node2"})])
    node_lab.in_ns(node_lab.client, "ip", "route", "replace", "192.168.88.0/24", "via", NODE_IP)
    node_lab.in_ns(node_lab.node, "ip", "route", "replace", "192.168.88.0/24", "via", "169.254.99.2")  # to the sink
    assert names(node_lab.request("192.168.88.10", 80, count=5)) == {"b2"}
    assert node_lab.request("192.168.88.11", 80, count=2, timeout=5) == ["refused"] * 2
    # internalTrafficPolicy Local: only the endpoint on this node, for traffic from a pod here
    answers = node_lab.request("10.96.0.24", 80, count=20, ns=node_lab.backend("b2"))
    assert names(answers) == {"b1"}, answers


def test_nodeport_addresses_limit_where_node_ports_answer(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    proxy = node_lab.start_proxy(*mode, "--nodeport-addresses", "192.168.77.0/24")
    proxy.apply([service("np", "10.96.0.25", node_port=30025)], [endpoint_slice("np", {"b1": "node1"})])
    assert names(node_lab.request(NODE_IP, 30025, count=3)) == {"b1"}
    # the node's pod-bridge address is not in --nodeport-addresses: nothing there answers
    assert node_lab.request(BRIDGE_IP, 30025, count=2, ns=node_lab.backend("b2")) == ["refused"] * 2


def child_names(process: psutil.Process) -> list[str]:
    """Names of a process's descendants; a child that exits while being read is simply not listed."""
    names_seen = []
    for child in process.children(recursive=True):
        try:
            names_seen.append(child.name())
        except psutil.NoSuchProcess:
            continue
    return names_seen


def test_sigkill_mid_sync_then_restart_leaves_exactly_the_wanted_rules(
        node_lab: Lab, mode: tuple[str, str | None]) -> None:
    kind, _variant = mode
    bulk = [service(f"bulk{i}", f"10.96.{1 + i // 250}.{i % 250 + 1}") for i in range(600)]
    slices = [endpoint_slice(f"bulk{i}", {"b1": "node1"}) for i in range(600)]
    first = node_lab.start_proxy(*mode)
    assert first.proc.stdin is not None
    first.proc.stdin.write(json.dumps({"services": bulk, "endpointSlices": slices}) + "\n")
    first.proc.stdin.flush()
    # wait until the kernel update is under way (the restore or nft child runs), then SIGKILL the proxy
    proxy = psutil.Process(first.proc.pid)
    writers = ("iptables", "xtables", "nft")
    deadline = time.monotonic() + 30
    while not any(name.startswith(writers) for name in child_names(proxy)):
        assert time.monotonic() < deadline, "the proxy never started writing rules"
        time.sleep(0.005)
    first.stop()
    keep = service("keep", "10.96.0.30")
    second = node_lab.start_proxy(*mode)
    second.apply([keep], [endpoint_slice("keep", {"b1": "node1"})])
    after = node_lab.ruleset(*mode)
    assert "10.96.0.30" in after
    assert "10.96.1." not in after and "10.96.2." not in after and "10.96.3." not in after, \
        "nothing of the killed sync survives the restart"
    assert names(node_lab.request("10.96.0.30", 80, count=3)) == {"b1"}
    if kind == "iptables":
        for jump in JUMP_RULES:
            assert after.count(jump.saved_form() + "\n") == 1, jump
    second.stop()
