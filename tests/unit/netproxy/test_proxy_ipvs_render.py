"""IPVS mode, pure part: model -> addresses, virtual and real servers; the diff against a kernel dump;
the nft companion table against a hand-written golden file; the netlink messages pyroute2 encodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from proxy_objects import endpoint_slice, golden_objects, service

from netproxy.cmd import add_arguments, config_from_args
from netproxy.conntrack import stale_commands, udp_view
from netproxy.ipvs import Addresses, node_ips, real_from_message, server_from_message, service_request
from netproxy.ipvs_render import (
    Desired,
    IpvsOptions,
    IpvsState,
    RealServer,
    VirtualServer,
    VirtualServerKey,
    build,
    companion_script,
    diff,
    owned,
)
from netproxy.tracker import ChangeTracker

GOLDEN = Path(__file__).parent / "golden"
NODE = "192.168.1.10"
OPTS = IpvsOptions(node_name="node1", cluster_cidr="10.244.0.0/16", node_ips=(NODE,))


def tcp(ip: str, port: int) -> VirtualServerKey:
    return VirtualServerKey(ip, "tcp", port)


def reals(*pairs: tuple[str, int]) -> tuple[RealServer, ...]:
    return tuple(RealServer(ip, port) for ip, port in pairs)


def golden_tracker() -> tuple[ChangeTracker, list]:
    services, slices = golden_objects()
    tracker = ChangeTracker("node1")
    for s in services:
        tracker.update_service(s)
    for s in slices:
        tracker.update_slice(s)
    return tracker, slices


def golden_desired(opts: IpvsOptions = OPTS) -> Desired:
    tracker, _ = golden_tracker()
    return build(tracker.snapshot(full=True), opts)


def test_desired_addresses_and_virtual_servers() -> None:
    desired = golden_desired()
    assert desired.ipvs.addresses == {"172.30.0.41", "172.30.0.42", "172.30.0.43", "192.168.99.1"}
    svc1 = reals(("10.180.0.1", 8080), ("10.180.1.1", 8080))
    assert desired.ipvs.servers == {
        tcp("172.30.0.41", 80): VirtualServer(tcp("172.30.0.41", 80), "rr", 0, svc1),
        tcp(NODE, 30080): VirtualServer(tcp(NODE, 30080), "rr", 0, svc1),
        # no endpoints: the virtual server exists, empty (the companion table rejects)
        VirtualServerKey("172.30.0.42", "udp", 53): VirtualServer(VirtualServerKey("172.30.0.42", "udp", 53)),
        # ClientIP affinity: persistent with the service's timeout; externalTrafficPolicy Local:
        # the external IP and the NodePort reach only the endpoint on this node, the ClusterIP both
        tcp("172.30.0.43", 80): VirtualServer(tcp("172.30.0.43", 80), "rr", 300,
                                              reals(("10.180.0.2", 80), ("10.180.1.2", 80))),
        tcp("192.168.99.1", 80): VirtualServer(tcp("192.168.99.1", 80), "rr", 300, reals(("10.180.0.2", 80))),
        tcp(NODE, 30003): VirtualServer(tcp(NODE, 30003), "rr", 300, reals(("10.180.0.2", 80))),
    }
    assert (desired.no_local_internal, desired.no_local_external) == (0, 0)


def test_companion_table_matches_golden() -> None:
    desired = golden_desired()
    assert companion_script(desired.companion, OPTS) == (GOLDEN / "ipvs_companion.nft").read_text()


def test_companion_with_nodeport_addresses_and_masquerade_all() -> None:
    opts = IpvsOptions(node_name="node1", masquerade_all=True, node_ips=(NODE,), nodeport_ips=(NODE, "127.0.0.1"))
    script = companion_script(golden_desired(opts).companion, opts)
    assert "\t\tip daddr . meta l4proto . th dport @cluster-ports jump mark-for-masquerade\n" in script
    assert "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports" in script
    assert "fib daddr type local" not in script
    assert f"add element ip kube-proxy-ipvs nodeport-ips {{ {NODE} }}\n" in script  # never 127/8
    # no cluster CIDR and no --masquerade-all: ClusterIP traffic keeps its source
    bare = IpvsOptions(node_name="node1", node_ips=(NODE,))
    assert "@cluster-ports" not in companion_script(golden_desired(bare).companion, bare).split("chain mark-services")[1]


def test_scheduler_flag_and_its_upstream_name() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args(["--node-name", "n1"])).ipvs_scheduler == "rr"
    config = config_from_args(parser.parse_args(["--node-name", "n1", "--proxy-mode", "ipvs",
                                                 "--ipvs-scheduler", "wlc"]))
    assert config.mode == "ipvs" and config.ipvs_scheduler == "wlc"
    opts = IpvsOptions(node_name="n1", scheduler="lc", node_ips=(NODE,))
    assert {s.scheduler for s in golden_desired(opts).ipvs.servers.values()} == {"lc"}


def test_terminating_endpoints_only_as_fallback() -> None:
    tracker = ChangeTracker("n1")
    ports = [{"port": 80, "protocol": "TCP"}]
    tracker.update_service(service("a", "web", "10.96.0.5", ports))
    ready = endpoint_slice("a", "web", ports, [("10.1.0.1", "n1")], name="web-1")
    going = endpoint_slice("a", "web", ports, [("10.1.0.2", "n2")], name="web-2", ready=False, serving=True,
                           terminating=True)
    tracker.update_slice(ready)
    tracker.update_slice(going)
    key = tcp("10.96.0.5", 80)
    assert build(tracker.snapshot(), OPTS).ipvs.servers[key].reals == reals(("10.1.0.1", 80))
    tracker.delete_slice(ready)
    assert build(tracker.snapshot(), OPTS).ipvs.servers[key].reals == reals(("10.1.0.2", 80))


def test_traffic_policies_local() -> None:
    tracker = ChangeTracker("n1")
    ports = [{"port": 80, "protocol": "TCP", "nodePort": 30500}]
    tracker.update_service(service("a", "itp", "10.96.0.6", [{"port": 80}], internalTrafficPolicy="Local"))
    tracker.update_service(service("a", "etp", "10.96.0.7", ports, type="NodePort", externalTrafficPolicy="Local",
                                   externalIPs=[NODE, "192.168.50.5"]))
    eps = [("10.1.0.1", "n1"), ("10.1.0.2", "n2")]
    tracker.update_slice(endpoint_slice("a", "itp", [{"port": 8080, "protocol": "TCP"}], eps))
    tracker.update_slice(endpoint_slice("a", "etp", [{"port": 8080, "protocol": "TCP"}], [("10.1.0.2", "n2")]))
    desired = build(tracker.snapshot(), OPTS)
    servers = desired.ipvs.servers
    assert servers[tcp("10.96.0.6", 80)].reals == reals(("10.1.0.1", 8080))  # internal Local: this node's only
    assert servers[tcp("10.96.0.7", 80)].reals == reals(("10.1.0.2", 8080))  # ClusterIP: every endpoint
    assert servers[tcp(NODE, 30500)].reals == () and servers[tcp("192.168.50.5", 80)].reals == ()
    # endpoints elsewhere but none here: dropped (not rejected) on the external paths
    comp = desired.companion
    assert comp.no_endpoint_nodeports == {("tcp", 30500): "drop"}
    assert comp.no_endpoint_services == {("192.168.50.5", "tcp", 80): "drop", (NODE, "tcp", 80): "drop"}
    assert (desired.no_local_internal, desired.no_local_external) == (0, 1)
    # an external IP that is a node address already is not put on kube-ipvs0
    assert NODE not in desired.ipvs.addresses and "192.168.50.5" in desired.ipvs.addresses
    assert comp.nodeports_local == {("tcp", 30500)} and not comp.nodeports


def kernel_with(desired: Desired) -> IpvsState:
    return IpvsState(set(desired.ipvs.addresses), dict(desired.ipvs.servers))


def test_diff_of_the_wanted_state_is_empty_and_from_nothing_adds_all() -> None:
    desired = golden_desired()
    assert not diff(kernel_with(desired), desired.ipvs, [NODE])
    plan = diff(IpvsState(), desired.ipvs, [NODE])
    assert plan.lines()[:5] == ["addr add 172.30.0.41/32 dev kube-ipvs0", "addr add 172.30.0.42/32 dev kube-ipvs0",
                                "addr add 172.30.0.43/32 dev kube-ipvs0", "addr add 192.168.99.1/32 dev kube-ipvs0",
                                "add TCP 172.30.0.41:80 scheduler rr"]
    assert len(plan.add_servers) == 6 and len(plan.add_reals) == 8
    assert not plan.del_servers and not plan.del_addresses


def test_diff_of_an_endpoint_removal_and_a_service_deletion() -> None:
    tracker, slices = golden_tracker()
    before = build(tracker.snapshot(full=True), OPTS)
    slices[0]["endpoints"] = [e for e in slices[0]["endpoints"] if e["addresses"] != ["10.180.1.1"]]
    tracker.update_slice(slices[0])
    after = build(tracker.snapshot(), OPTS)
    assert diff(kernel_with(before), after.ipvs, [NODE]).lines() == [
        "del TCP 172.30.0.41:80 -> 10.180.1.1:8080", f"del TCP {NODE}:30080 -> 10.180.1.1:8080"]
    services, _ = golden_objects()
    tracker.delete_service(services[2])
    gone = build(tracker.snapshot(), OPTS)
    assert diff(kernel_with(after), gone.ipvs, [NODE]).lines() == [
        "del TCP 172.30.0.43:80", f"del TCP {NODE}:30003", "del TCP 192.168.99.1:80",
        "addr del 172.30.0.43/32 dev kube-ipvs0", "addr del 192.168.99.1/32 dev kube-ipvs0"]


def test_diff_changes_settings_and_weights_in_place() -> None:
    desired = golden_desired()
    kernel = kernel_with(desired)
    key = tcp("172.30.0.41", 80)
    kernel.servers[key] = VirtualServer(key, "wlc", 60, (RealServer("10.180.0.1", 8080, weight=0),
                                                         RealServer("10.180.1.1", 8080)))
    assert diff(kernel, desired.ipvs, [NODE]).lines() == [
        "edit TCP 172.30.0.41:80 scheduler rr", "edit TCP 172.30.0.41:80 -> 10.180.0.1:8080 weight 1"]


def test_diff_touches_only_what_is_ours() -> None:
    desired = golden_desired()
    kernel = kernel_with(desired)
    kernel.addresses.add("172.30.0.99")  # a stale address of an earlier run
    foreign = [tcp(NODE, 9999), tcp("10.0.0.5", 80), tcp("10.0.0.5", 30001)]
    stale = [tcp("172.30.0.99", 80),  # on a kube-ipvs0 address
             tcp(NODE, 31000),  # a NodePort on a node address
             tcp("172.30.0.41", 81)]  # another port of a wanted address
    for key in foreign + stale:
        kernel.servers[key] = VirtualServer(key, "wlc", 0, reals(("10.9.9.9", 80)))
    plan = diff(kernel, desired.ipvs, [NODE])
    assert plan.lines() == ["del TCP 172.30.0.41:81", "del TCP 172.30.0.99:80", f"del TCP {NODE}:31000",
                            "addr del 172.30.0.99/32 dev kube-ipvs0"]
    # what this process created counts as ours even outside those rules
    plan = diff(kernel, desired.ipvs, [NODE], programmed={tcp("10.0.0.5", 80)})
    assert "del TCP 10.0.0.5:80" in plan.lines() and "del TCP 10.0.0.5:30001" not in plan.lines()
    assert owned(tcp("10.0.0.5", 30001), set(), ["10.0.0.5"]) and not owned(tcp("10.0.0.5", 29999), set(),
                                                                            ["10.0.0.5"])


def test_node_addresses_for_node_ports() -> None:
    addrs = Addresses(7, {("10.96.0.1", 32)}, ["10.96.0.1", "10.244.1.1", "127.0.0.1", "192.168.77.1"])
    assert node_ips(addrs, ()) == (("10.244.1.1", "192.168.77.1"), None)
    assert node_ips(addrs, ("0.0.0.0/0",)) == (("10.244.1.1", "192.168.77.1"), None)
    assert node_ips(addrs, ("192.168.0.0/16",)) == (("192.168.77.1",), ("192.168.77.1",))


def test_netlink_messages_round_trip() -> None:
    """What pyroute2 encodes from our requests decodes back into the same servers (the same path a
    kernel dump takes: ipvsmsg bytes -> server_from_message / real_from_message)."""
    from pyroute2.netlink.generic import ipvs as genl

    from netproxy.ipvs import dest_request

    server = VirtualServer(VirtualServerKey("10.96.0.10", "udp", 53), "sh", 300)
    real = RealServer("10.244.1.11", 5353, weight=1)
    msg = genl.ipvsmsg()
    msg["cmd"] = genl.IPVS_CMD_NEW_DEST
    msg["version"] = genl.GENL_VERSION
    msg["attrs"] = [("IPVS_CMD_ATTR_SERVICE", service_request(server).dump_nla()),
                    ("IPVS_CMD_ATTR_DEST", dest_request(real).dump_nla())]
    msg.encode()
    decoded = genl.ipvsmsg(msg.data)
    decoded.decode()
    assert server_from_message(decoded) == server
    assert real_from_message(decoded) == real
    attrs = dict(service_request(server).dump_nla()["attrs"])
    assert attrs["IPVS_SVC_ATTR_FLAGS"]["flags"] == 1 and attrs["IPVS_SVC_ATTR_NETMASK"] == "255.255.255.255"
    assert dict(dest_request(real).dump_nla()["attrs"])["IPVS_DEST_ATTR_FWD_METHOD"] == 0  # masquerading
    plain = VirtualServer(tcp("10.96.0.11", 80))
    assert dict(service_request(plain).dump_nla()["attrs"])["IPVS_SVC_ATTR_FLAGS"]["flags"] == 0


def test_udp_conntrack_entries_of_ipvs_are_matched_by_reply_source() -> None:
    tracker = ChangeTracker("n1")
    ports = [{"port": 5353, "protocol": "UDP"}]
    tracker.update_service(service("a", "dns", "10.96.0.10", [{"port": 53, "protocol": "UDP"}]))
    tracker.update_slice(endpoint_slice("a", "dns", ports, [("10.1.0.1", "n1"), ("10.1.0.2", "n2")]))
    before = udp_view(tracker.snapshot())
    tracker.update_slice(endpoint_slice("a", "dns", ports, [("10.1.0.2", "n2")]))
    after = udp_view(tracker.snapshot())
    assert stale_commands(before, after, "--reply-src") == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--reply-src", "10.1.0.1"]]


def test_metrics_name_what_ipvs_mode_owns() -> None:
    from netproxy.metrics import ProxyMetrics

    metrics = ProxyMetrics()
    metrics.rules = {"virtual_servers": 6, "real_servers": 8}
    text = metrics.render("ipvs")
    assert 'kubeproxy_sync_proxy_rules_ipvs_total{kind="virtual_servers"} 6' in text
    assert "nftables_total" not in text
