"""nftables rendering: the full table against a hand-checked golden file, and minimal diffs."""

from __future__ import annotations

from pathlib import Path

from proxy_objects import endpoint_slice, golden_objects, service

from netproxy.nftables_render import (
    BuildCache,
    NftOptions,
    SlotAllocator,
    build,
    diff_script,
    full_script,
    shard,
)
from netproxy.tracker import ChangeTracker

GOLDEN = Path(__file__).parent / "golden"
OPTS = NftOptions(node_name="node1", cluster_cidr="10.244.0.0/16")
SVC1 = "service-ULMVA6XW-ns1/svc1/tcp/p80"


def golden_tracker() -> tuple[ChangeTracker, list]:
    services, slices = golden_objects()
    tracker = ChangeTracker("node1")
    for s in services:
        tracker.update_service(s)
    for s in slices:
        tracker.update_slice(s)
    return tracker, slices


def test_full_table_matches_golden() -> None:
    tracker, _ = golden_tracker()
    state = build(tracker.snapshot(full=True), OPTS)
    assert full_script(state) == (GOLDEN / "nftables_basic.nft").read_text()
    # no anonymous sets anywhere: every vmap/map lookup names a set
    assert "vmap {" not in full_script(state) and "map {" not in full_script(state).replace("map @", "")


def test_endpoint_removal_is_a_small_transaction() -> None:
    tracker, slices = golden_tracker()
    dnat, chains = SlotAllocator(), SlotAllocator()
    before = build(tracker.snapshot(full=True), OPTS, dnat, chains)
    slices[0]["endpoints"] = [e for e in slices[0]["endpoints"] if e["addresses"] != ["10.180.1.1"]]
    tracker.update_slice(slices[0])
    after = build(tracker.snapshot(), OPTS, dnat, chains)
    t = "ip kube-proxy"
    assert diff_script(before, after) == "\n".join([
        f"flush chain {t} {SVC1}",
        f"delete element {t} hairpin {{ 10.180.1.1 . 10.180.1.1 }}",
        f"delete element {t} endpoint-dnat-tcp-34 {{ 1 }}",
        f"add rule {t} {SVC1} ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        f"add rule {t} {SVC1} meta l4proto tcp dnat ip to numgen random mod 1 offset 0 map @endpoint-dnat-tcp-34",
    ]) + "\n"
    assert diff_script(after, build(tracker.snapshot(), OPTS, dnat, chains)) == ""


def test_slots_stay_put_for_unchanged_services() -> None:
    tracker = ChangeTracker("n1")
    ports = [{"port": 80, "protocol": "TCP"}]
    for i in range(3):
        tracker.update_service(service("a", f"s{i}", f"10.96.0.{i + 1}", ports))
        tracker.update_slice(endpoint_slice("a", f"s{i}", ports, [(f"10.1.{i}.{j}", "n") for j in (1, 2)]))
    dnat, chains = SlotAllocator(), SlotAllocator()
    before = build(tracker.snapshot(), OPTS, dnat, chains)
    tracker.update_slice(endpoint_slice("a", "s0", ports, [(f"10.1.0.{j}", "n") for j in (1, 2, 3)]))
    after = build(tracker.snapshot(), OPTS, dnat, chains)
    changed = [n for n, c in after.chains.items() if before.chains.get(n) != c]
    assert len(changed) == 1 and "/s0/" in changed[0]
    script = diff_script(before, after)
    # s0 moved to a fresh slot: only its old slot's elements go, nobody else's change
    assert [ln for ln in script.splitlines() if ln.startswith("delete element")] == [
        f"delete element ip kube-proxy endpoint-dnat-tcp-{shard(changed[0]):02d} {{ 0, 1 }}"]
    assert script.count("add element ip kube-proxy endpoint-dnat-tcp-") == 1


def test_service_deletion_removes_its_chains_and_affinity_sets() -> None:
    tracker, _ = golden_tracker()
    before = build(tracker.snapshot(full=True), OPTS)
    services, _ = golden_objects()
    tracker.delete_service(services[2])
    after = build(tracker.snapshot(), OPTS)
    script = diff_script(before, after)
    assert "delete chain ip kube-proxy service-JUGRLKBT-ns3/svc3/tcp/http" in script
    assert "delete set ip kube-proxy affinity-NUVJATAU-ns3/svc3/tcp/http__10.180.0.2/80" in script
    # chains are emptied before anything that pointed at them disappears
    assert script.index("flush chain ip kube-proxy service-JUGRLKBT") < script.index("delete chain")


def test_partial_build_reuses_unchanged_services_and_equals_a_full_build() -> None:
    tracker, slices = golden_tracker()
    dnat, chains, cache = SlotAllocator(), SlotAllocator(), BuildCache()
    build(tracker.snapshot(full=True), OPTS, dnat, chains, cache)
    slices[1]["endpoints"][1]["conditions"]["ready"] = False  # svc3 loses its remote endpoint
    tracker.update_slice(slices[1])
    partial = build(tracker.snapshot(), OPTS, dnat, chains, cache)
    full = build(tracker.snapshot(full=True), OPTS, dnat, chains)
    assert partial.chains == full.chains
    assert {n: s.elements for n, s in partial.sets.items()} == {n: s.elements for n, s in full.sets.items()}
    assert "affinity-G43QS37V-ns3/svc3/tcp/http__10.180.1.2/80" not in partial.sets
