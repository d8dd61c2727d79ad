"""Service address allocation on a real SQLite store: bands, exhaustion, sharing, claims."""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from controlplane.api.errors import StatusError
from controlplane.api.resources import SERVICES
from controlplane.apiserver.allocators import (
    IP_CLAIMS,
    PORT_CLAIMS,
    ServiceAllocator,
    band_order,
    static_band,
)
from controlplane.storage.sqlite import SQLiteStore

_counter = iter(range(1_000_000))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "state.db", compact_interval=0)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def service(name: str, *, node_ports: list[dict[str, Any]] | None = None, cluster_ip: str | None = None,
            ) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "NodePort" if node_ports is not None else "ClusterIP",
                            "ports": node_ports or [{"port": 80}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"metadata": {"namespace": "default", "name": name, "uid": f"uid-{name}-{next(_counter)}"},
            "spec": spec}


async def store_service(store: SQLiteStore, svc: dict[str, Any]) -> None:
    md = svc["metadata"]
    await store.create(SERVICES.storage_key(md["namespace"], md["name"]), orjson.dumps(svc))


def test_bands_follow_upstreams_sizes_and_every_offset_comes_once() -> None:
    assert static_band(2768, 32, 16, 128) == 86  # 30000-32767: 30000-30085 stay for users' picks
    assert static_band(254, 16, 16, 256) == 16  # a /24
    assert static_band(2**20, 16, 16, 256) == 256  # a /12
    order = list(band_order(100, 16, random.Random(1)))
    assert sorted(order) == list(range(100))
    assert set(order[:84]) == set(range(16, 100)), "the upper band comes first"


async def test_dynamic_addresses_come_from_the_upper_bands(store: SQLiteStore) -> None:
    allocator = ServiceAllocator(store, "10.96.0.0/12", "30000-32767", random.Random(3))
    network = ipaddress.ip_network("10.96.0.0/12")
    for i in range(20):
        svc = service(f"s{i}", node_ports=[{"port": 80}])
        await allocator.allocate(svc)
        offset = int(ipaddress.ip_address(svc["spec"]["clusterIP"])) - int(network.network_address)
        assert offset > 256 and svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
        assert 30086 <= svc["spec"]["ports"][0]["nodePort"] <= 32767


async def test_a_small_range_fills_every_address_once_then_is_full(store: SQLiteStore) -> None:
    allocator = ServiceAllocator(store, "10.0.0.0/28", "30000-30009", random.Random(5))
    given = []
    for i in range(13):  # 14 usable addresses, the first is the `kubernetes` Service's
        svc = service(f"s{i}")
        await allocator.allocate(svc)
        given.append(svc["spec"]["clusterIP"])
    assert sorted(given, key=ipaddress.ip_address) == [f"10.0.0.{i}" for i in range(2, 15)]
    with pytest.raises(StatusError) as full:
        await allocator.allocate(service("one-more"))
    assert full.value.code == 422 and "range is full" in full.value.message
    assert not [key for key in await _claim_keys(store) if key.endswith("/10.0.0.1")]


async def test_ports_with_one_number_share_a_node_port(store: SQLiteStore) -> None:
    allocator = ServiceAllocator(store, "10.96.0.0/16", "30000-32767", random.Random(7))
    dns = service("dns", node_ports=[{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"},
                                     {"port": 9153, "protocol": "TCP"}])
    await allocator.allocate(dns)
    ports = [p["nodePort"] for p in dns["spec"]["ports"]]
    assert ports[0] == ports[1] != ports[2]
    requested = service("pinned", node_ports=[{"port": 53, "protocol": "UDP", "nodePort": 30053},
                                               {"port": 53, "protocol": "TCP", "nodePort": 30053}])
    await allocator.allocate(requested)
    clash = service("clash", node_ports=[{"port": 80, "nodePort": 30054}, {"port": 81, "nodePort": 30054}])
    with pytest.raises(StatusError) as refused:
        await allocator.allocate(clash)
    assert "spec.ports[1].nodePort" in str(refused.value.details) and "already allocated" in refused.value.message
    assert PORT_CLAIMS + "30054" not in await _claim_keys(store), "a refused Service gives its claims back"


async def test_services_stored_without_claims_are_claimed_at_start(store: SQLiteStore) -> None:
    old = service("old", node_ports=[{"port": 80, "nodePort": 30080}], cluster_ip="10.96.0.40")
    old["spec"]["clusterIPs"] = ["10.96.0.40"]
    await store_service(store, old)
    allocator = ServiceAllocator(store, "10.96.0.0/16", "30000-32767")
    assert await allocator.claim_stored_services() == 2
    assert await allocator.claim_stored_services() == 0, "a second pass writes nothing"
    claim = orjson.loads((await store.get(IP_CLAIMS + "10.96.0.40")).value)
    assert (claim["namespace"], claim["name"], claim["uid"]) == ("default", "old", old["metadata"]["uid"])
    with pytest.raises(StatusError, match="provided IP is already allocated"):
        await allocator.allocate(service("new", cluster_ip="10.96.0.40"))
    with pytest.raises(StatusError, match="provided port is already allocated"):
        await allocator.allocate(service("new", node_ports=[{"port": 80, "nodePort": 30080}]))


async def test_an_old_claim_whose_service_no_longer_uses_the_address_is_taken_over(store: SQLiteStore) -> None:
    allocator = ServiceAllocator(store, "10.96.0.0/16", "30000-32767")
    # The Service exists but moved to ClusterIP, and the release of its node port was lost.
    moved = service("moved", cluster_ip="10.96.0.41")
    await store_service(store, moved)
    stale = {"namespace": "default", "name": "moved", "uid": moved["metadata"]["uid"], "claimedAt": time.time() - 3600}
    await store.create(PORT_CLAIMS + "30090", orjson.dumps(stale))
    # A live Service still using its port keeps it, however old the claim.
    user = service("user", node_ports=[{"port": 80, "nodePort": 30091}])
    await store_service(store, user)
    held = {**stale, "name": "user", "uid": user["metadata"]["uid"]}
    await store.create(PORT_CLAIMS + "30091", orjson.dumps(held))

    taker = service("taker", node_ports=[{"port": 80, "nodePort": 30090}])
    await allocator.allocate(taker)
    assert orjson.loads((await store.get(PORT_CLAIMS + "30090")).value)["uid"] == taker["metadata"]["uid"]
    with pytest.raises(StatusError, match="provided port is already allocated"):
        await allocator.allocate(service("late", node_ports=[{"port": 80, "nodePort": 30091}]))


async def _claim_keys(store: SQLiteStore) -> set[str]:
    return {kv.key for prefix in (IP_CLAIMS, PORT_CLAIMS) for kv in (await store.list(prefix)).items}
