"""NftTable (what the nftables backend keeps between syncs) writes exactly what the reference writes:
`full_script(build(...))` first, then `diff_script(previous build, build with the cache)` per sync."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from proxy_objects import endpoint_slice, golden_objects, service

from netproxy.nftables_render import (
    BuildCache,
    NftOptions,
    NftState,
    NftTable,
    SlotAllocator,
    build,
    diff_script,
    full_script,
)
from netproxy.tracker import ChangeTracker, Snapshot

OPTS = NftOptions(node_name="n1", cluster_cidr="10.244.0.0/16")


class Reference:
    """The nftables backend as it was: a whole NftState per sync, diffed against the previous one."""

    def __init__(self) -> None:
        self.dnat, self.chains, self.cache = SlotAllocator(), SlotAllocator(), BuildCache()
        self.applied: NftState | None = None

    def sync(self, snap: Snapshot, opts: NftOptions) -> tuple[str, NftState]:
        state = build(snap, opts, self.dnat, self.chains, self.cache)
        script = full_script(state) if self.applied is None else diff_script(self.applied, state)
        self.applied = state
        return script, state


def random_service(rng: random.Random, i: int, conflicts: bool = False) -> dict:
    kind = rng.choice(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"])
    ports = [{"name": f"p{j}", "port": 80 + j, "protocol": rng.choice(["TCP", "TCP", "UDP"]),
              **({"nodePort": 30000 + i * 4 + j} if kind != "ClusterIP" else {})}
             for j in range(rng.choice([1, 1, 2]))]
    spec: dict = {"type": kind}
    if rng.random() < 0.3:
        spec.update(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    if rng.random() < 0.2:
        spec["externalIPs"] = [f"192.168.99.{i % 5}"]
    if kind != "ClusterIP" and rng.random() < 0.4:
        spec["externalTrafficPolicy"] = "Local"
    if rng.random() < 0.1:
        spec["internalTrafficPolicy"] = "Local"
    # a few services share a ClusterIP:port with another: a conflict the table must hand to build
    ip = f"10.96.0.{i + 1}" if not conflicts or rng.random() > 0.05 else "10.96.0.1"
    svc = service("ns", f"s{i}", ip, ports, **spec)
    if kind == "LoadBalancer":
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": f"203.0.113.{i}"}]}}
    return svc


def random_slice(rng: random.Random, svc: dict, k: int = 0) -> dict:
    ports = [{"name": p["name"], "port": 8000 + p["port"], "protocol": p["protocol"]} for p in svc["spec"]["ports"]]
    # a small address pool: endpoints are often shared between services (hairpin elements with two holders)
    eps = [(f"10.1.0.{rng.randrange(1, 40)}", rng.choice(["n1", "n2"])) for _ in range(rng.randrange(0, 5))]
    sl = endpoint_slice("ns", svc["metadata"]["name"], ports, eps, name=f"{svc['metadata']['name']}-{k}")
    for ep in sl["endpoints"]:
        if rng.random() < 0.15:
            ep["conditions"] = {"ready": False, "serving": True, "terminating": True}
    return sl


def run(seed: int, steps: int = 60) -> int:
    rng = random.Random(seed)
    tracker_a, tracker_b = ChangeTracker("n1"), ChangeTracker("n1")
    conflicts = seed % 4 == 3
    services = {i: random_service(rng, i, conflicts) for i in range(25)}
    for svc in services.values():
        for t in (tracker_a, tracker_b):
            t.update_service(svc)
            t.update_slice(random_slice(random.Random(seed * 1000 + int(svc["metadata"]["name"][1:])), svc))
    reference, table = Reference(), NftTable()
    fast = 0
    diff = table._diff

    def counted(snap: Snapshot, *args: Any) -> str | None:
        nonlocal fast
        script = diff(snap, *args)
        fast += script is not None
        return script

    table._diff = counted  # type: ignore[method-assign,assignment]
    opts = OPTS
    for step in range(steps):
        full = step == 0 or rng.random() < 0.1
        if full and rng.random() < 0.2:  # the node's addresses changed
            opts = replace(OPTS, nodeport_ips=rng.choice([None, ("10.0.0.1",), ("10.0.0.1", "10.0.0.2")]))
        if rng.random() < 0.03:  # a failed transaction: both start over with a whole table
            reference, diff_before = Reference(), table._diff
            table.reset()
            table._diff = diff_before  # type: ignore[method-assign]
        expected, state = reference.sync(tracker_a.snapshot(full=full), opts)
        snap = tracker_b.snapshot(full=full)
        script = table.sync_script(snap, opts)
        assert script == expected, f"seed {seed} step {step}"
        assert table.stats() == ({"rules": state.rule_count, "elements": state.element_count,
                                  "chains": len(state.chains)}, state.no_local_internal, state.no_local_external)
        for _ in range(rng.choice([1, 1, 2, 3])):
            i = rng.randrange(30)
            what = rng.random()
            objs: list[tuple[str, dict]] = []
            if what < 0.5 and i in services:
                objs.append(("slice", random_slice(rng, services[i], rng.choice([0, 0, 1]))))
            elif what < 0.7:
                services[i] = random_service(rng, i, conflicts)
                objs.append(("service", services[i]))
            elif what < 0.85 and i in services:
                objs.append(("delete", services.pop(i)))
            elif i in services:
                sl = random_slice(rng, services[i])
                objs.append(("delete-slice", sl))
            for t in (tracker_a, tracker_b):
                for kind, obj in objs:
                    {"slice": t.update_slice, "service": t.update_service, "delete": t.delete_service,
                     "delete-slice": t.delete_slice}[kind](obj)
    # and the whole installed table, rebuilt from the records, is the reference's
    assert reference.applied is not None
    assert full_script(table.installed_state()) == full_script(reference.applied)
    return fast


def test_table_writes_what_build_and_diff_write() -> None:
    # most partial syncs take the table's own way; a few (two services on one ClusterIP:port) go to build
    assert sum(run(seed) for seed in range(16)) > 500


def test_golden_objects_through_the_table() -> None:
    services, slices = golden_objects()
    tracker = ChangeTracker("node1")
    for s in services:
        tracker.update_service(s)
    for s in slices:
        tracker.update_slice(s)
    opts = NftOptions(node_name="node1", cluster_cidr="10.244.0.0/16")
    table = NftTable()
    assert table.sync_script(tracker.snapshot(full=True), opts) == \
        (Path(__file__).parent / "golden" / "nftables_basic.nft").read_text()
