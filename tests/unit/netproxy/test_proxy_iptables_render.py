"""iptables rendering against hand-written golden rulesets."""

from __future__ import annotations

from pathlib import Path

from proxy_objects import endpoint_slice, golden_objects, service

from netproxy import names
from netproxy.iptables_render import RenderCache, RenderOptions, probability, render
from netproxy.model import ServicePortName
from netproxy.tracker import ChangeTracker

GOLDEN = Path(__file__).parent / "golden"
OPTS = RenderOptions(node_name="node1", cluster_cidr="10.244.0.0/16")


def tracker_with(services: list, slices: list, node: str = "node1") -> ChangeTracker:
    tracker = ChangeTracker(node)
    for s in services:
        tracker.update_service(s)
    for s in slices:
        tracker.update_slice(s)
    return tracker


def test_full_sync_matches_golden() -> None:
    services, slices = golden_objects()
    snap = tracker_with(services, slices).snapshot(full=True)
    existing = {"KUBE-SVC-STALESTALESTALE1", "KUBE-SEP-OLDOLDOLDOLDOLD1", "KUBE-SVC-XPGD46QRK7WJZT7O",
                "SOMEONE-ELSES-CHAIN"}
    rendered = render(snap, OPTS, existing)
    assert rendered.text == (GOLDEN / "iptables_basic.txt").read_text()
    assert rendered.deleted_chains == 2
    assert "SOMEONE-ELSES-CHAIN" not in rendered.text


def test_probabilities_are_formatted_as_upstream() -> None:
    assert [probability(n) for n in (4, 3, 2)] == ["0.2500000000", "0.3333333333", "0.5000000000"]


def test_partial_sync_writes_only_changed_service_chains() -> None:
    services, slices = golden_objects()
    tracker = tracker_with(services, slices)
    cache = RenderCache()
    first = render(tracker.snapshot(), OPTS, set(), cache)
    slices[0]["endpoints"].pop()
    assert tracker.update_slice(slices[0])
    snap = tracker.snapshot()
    assert snap.changed == {("ns1", "svc1")}
    rendered = render(snap, OPTS, first.active_nat_chains, cache)
    # the stale endpoint chain goes; the rule count still covers every service
    assert rendered.deleted_chains == 1
    assert rendered.nat_rules == render(tracker_with(*golden_objects()).snapshot(), OPTS).nat_rules - 3
    svc1 = ServicePortName("ns1", "svc1", "p80", "TCP")
    svc3 = ServicePortName("ns3", "svc3", "http", "TCP")
    assert f":{names.svc_chain(svc1)} - [0:0]" in rendered.text
    assert names.svc_chain(svc3) in rendered.text  # still dispatched to from KUBE-SERVICES
    assert f":{names.svc_chain(svc3)} - [0:0]" not in rendered.text  # but its chain is left alone
    assert names.svc_chain(svc3) in rendered.active_nat_chains


def test_masquerade_all_and_nodeport_addresses() -> None:
    tracker = tracker_with([service("a", "s", "10.96.0.1", [{"port": 80, "nodePort": 30001}], type="NodePort")],
                           [endpoint_slice("a", "s", [{"port": 80, "protocol": "TCP"}], [("10.1.0.1", "n")])])
    opts = RenderOptions(node_name="node1", masquerade_all=True, nodeport_ips=("192.168.1.5", "127.0.0.1"))
    text = render(tracker.snapshot(full=True), opts).text
    chain = names.svc_chain(ServicePortName("a", "s", "", "TCP"))
    assert f"-A {chain} -m comment --comment \"a/s cluster IP\" -m tcp -p tcp -d 10.96.0.1 --dport 80 " \
           "-j KUBE-MARK-MASQ" in text
    assert "-d 192.168.1.5 -j KUBE-NODEPORTS" in text
    assert "127.0.0.1 -j KUBE-NODEPORTS" not in text and "--dst-type LOCAL ! -d 127.0.0.0/8" not in text


def test_local_policy_without_local_endpoints_drops_external_traffic() -> None:
    svc = service("a", "s", "10.96.0.1", [{"port": 80, "nodePort": 30001}], type="NodePort",
                  externalTrafficPolicy="Local")
    tracker = tracker_with([svc], [endpoint_slice("a", "s", [{"port": 80, "protocol": "TCP"}],
                                                  [("10.1.0.1", "elsewhere")])])
    text = render(tracker.snapshot(full=True), OPTS).text
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "a/s has no local endpoints" -m addrtype '
            '--dst-type LOCAL -m tcp -p tcp --dport 30001 -j DROP') in text
    assert '"a/s cluster IP" -m tcp -p tcp -d 10.96.0.1 --dport 80 -j KUBE-SVC-' in text


def test_large_clusters_drop_endpoint_comments() -> None:
    services = [service("a", f"s{i}", f"10.96.{i // 250}.{i % 250 + 1}", [{"port": 80}]) for i in range(101)]
    slices = [endpoint_slice("a", f"s{i}", [{"port": 80, "protocol": "TCP"}],
                             [(f"10.1.{i}.{j}", "n") for j in range(1, 11)]) for i in range(101)]
    text = render(tracker_with(services, slices).snapshot(full=True), OPTS).text
    assert " -> 10.1." not in text
    assert "--comment a/s0" not in text


def test_partial_syncs_reuse_unchanged_lines_exactly() -> None:
    services, slices = golden_objects()
    tracker = tracker_with(services, slices)
    cache = RenderCache()
    render(tracker.snapshot(), OPTS, set(), cache)
    for round_ in range(3):  # several partial syncs in a row, each changing svc1 only
        slices[0]["endpoints"][0]["addresses"] = [f"10.244.9.{round_ + 1}"]
        assert tracker.update_slice(slices[0])
        partial = render(tracker.snapshot(), OPTS, None, cache)
        full = render(tracker_with(services, slices).snapshot(full=True), OPTS)

        def shared(text: str) -> list[str]:
            return [line for line in text.splitlines()
                    if line.startswith(("-A KUBE-SERVICES", "-A KUBE-NODEPORTS", "-A KUBE-EXTERNAL-SERVICES"))]
        # the shared chains are rewritten whole in both; unchanged services' lines come from the cache
        assert shared(partial.text) == shared(full.text)
        assert (partial.nat_rules, partial.filter_rules) == (full.nat_rules, full.filter_rules)
        assert partial.active_nat_chains == full.active_nat_chains


def test_a_deleted_service_leaves_the_cache() -> None:
    services, slices = golden_objects()
    tracker = tracker_with(services, slices)
    cache = RenderCache()
    first = render(tracker.snapshot(), OPTS, set(), cache)
    assert tracker.delete_service(services[0])
    rendered = render(tracker.snapshot(), OPTS, first.active_nat_chains, cache)
    svc1 = ServicePortName("ns1", "svc1", "p80", "TCP")
    assert svc1 not in cache.services and cache.services
    assert f"-X {names.svc_chain(svc1)}" in rendered.text
