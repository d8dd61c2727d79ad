"""Service ClusterIP and NodePort allocation through the API: taken, freed and claimed addresses."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.allocators import IP_CLAIMS, PORT_CLAIMS
from controlplane.apiserver.server import APIServer
from controlplane.client import Client


def service(name: str, *, cluster_ip: str | None = None, node_port: int | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"port": 80}
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": [port]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if node_port:
        spec["type"], port["nodePort"] = "NodePort", node_port
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def refused(client: Client, body: dict[str, Any]) -> str:
    with pytest.raises(StatusError) as err:
        await client.create(resources.SERVICES, body)
    assert err.value.code == 422
    return err.value.message


async def test_taken_addresses_are_refused_and_freed_ones_reused(api_server: APIServer) -> None:
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await client.create(resources.SERVICES, service("a", cluster_ip="10.96.0.50", node_port=30050))
        assert "provided IP is already allocated" in await refused(client, service("b", cluster_ip="10.96.0.50"))
        assert "provided port is already allocated" in await refused(client, service("b", node_port=30050))
        assert "not in the valid range" in await refused(client, service("b", cluster_ip="10.200.0.1"))

        # A create that fails (the name exists) gives back what it had claimed.
        with pytest.raises(StatusError) as exists:
            await client.create(resources.SERVICES, service("a", cluster_ip="10.96.0.51", node_port=30051))
        assert exists.value.reason == "AlreadyExists"
        await client.create(resources.SERVICES, service("c", cluster_ip="10.96.0.51", node_port=30051))

        # NodePort -> ClusterIP drops the node port, and it is free again at once.
        await client.patch(resources.SERVICES, "a", {"spec": {"type": "ClusterIP"}}, "default")
        await client.create(resources.SERVICES, service("d", node_port=30050))
        # A deleted Service's address is free again at once.
        await client.delete(resources.SERVICES, "a", "default")
        await client.create(resources.SERVICES, service("e", cluster_ip="10.96.0.50"))


async def test_claims_of_vanished_services_are_taken_over_after_the_grace(api_server: APIServer) -> None:
    store = api_server.store
    assert store is not None
    # As left by a server that died between claiming and writing its Service: one claim long ago,
    # one just now (that Service may still be on its way to the store).
    await store.create(IP_CLAIMS + "10.96.0.60", orjson.dumps({"uid": "gone", "claimedAt": time.time() - 3600}))
    await store.create(PORT_CLAIMS + "30060", orjson.dumps({"uid": "gone", "claimedAt": time.time()}))
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        created = await client.create(resources.SERVICES, service("old-claim", cluster_ip="10.96.0.60"))
        assert created["spec"]["clusterIP"] == "10.96.0.60"
        held = orjson.loads((await store.get(IP_CLAIMS + "10.96.0.60")).value)
        assert held["uid"] == created["metadata"]["uid"]
        assert "provided port is already allocated" in await refused(client, service("fresh", node_port=30060))


async def test_updates_allocate_new_ports_and_refuse_taken_ones(api_server: APIServer) -> None:
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await client.create(resources.SERVICES, service("taken", node_port=30070))
        svc = await client.create(resources.SERVICES, service("grows", node_port=30071))
        svc["spec"]["ports"].append({"name": "extra", "port": 81})
        svc["spec"]["ports"][0]["name"] = "main"
        grown = await client.update(resources.SERVICES, svc)
        assert grown["spec"]["ports"][0]["nodePort"] == 30071
        assert 30000 <= grown["spec"]["ports"][1]["nodePort"] <= 32767  # the added port got one
        grown["spec"]["ports"][0]["nodePort"] = 30070
        with pytest.raises(StatusError) as err:
            await client.update(resources.SERVICES, grown)
        assert err.value.code == 422 and "provided port is already allocated" in err.value.message
        # 30071, given up by the refused update's attempt, is still this Service's own.
        assert "provided port is already allocated" in await refused(client, service("other", node_port=30071))


async def test_refused_or_dry_run_updates_leave_no_claims(api_server: APIServer) -> None:
    store = api_server.store
    assert store is not None

    async def port_claims_of(uid: str) -> list[str]:
        return [kv.key for kv in (await store.list(PORT_CLAIMS)).items if orjson.loads(kv.value)["uid"] == uid]

    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await client.create(resources.SERVICES, service("holder", node_port=30090))
        plain = await client.create(resources.SERVICES, service("plain"))
        uid = plain["metadata"]["uid"]
        # Refused part-way: the first port would get a free node port, the second asks for a taken one.
        two_ports = {"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80},
                                                            {"name": "b", "port": 81, "nodePort": 30090}]}}
        with pytest.raises(StatusError):
            await client.patch(resources.SERVICES, "plain", two_ports, "default")
        # Refused by validation after the node port was allocated.
        bad_protocol = {"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80, "protocol": "XYZ"}]}}
        with pytest.raises(StatusError) as invalid:
            await client.patch(resources.SERVICES, "plain", bad_protocol, "default")
        assert invalid.value.code == 422
        # Only a dry run.
        dry = await client.request("PATCH", "/api/v1/namespaces/default/services/plain", query={"dryRun": "All"},
                                   body={"spec": {"type": "NodePort"}},
                                   content_type="application/merge-patch+json")
        assert dry["spec"]["ports"][0]["nodePort"]
        assert await port_claims_of(uid) == []
        assert (await client.get(resources.SERVICES, "plain", "default"))["spec"]["type"] == "ClusterIP"


async def test_dry_run_creates_show_addresses_check_them_and_claim_nothing(api_server: APIServer) -> None:
    store = api_server.store
    assert store is not None
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await client.create(resources.SERVICES, service("owner", cluster_ip="10.96.0.80", node_port=30080))
        claims_before = [kv.key for prefix in (IP_CLAIMS, PORT_CLAIMS) for kv in (await store.list(prefix)).items]

        async def dry_create(body: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = await client.request(
                "POST", "/api/v1/namespaces/default/services", query={"dryRun": "All"}, body=body)
            return result

        shown = await dry_create(service("trial", node_port=None))
        assert shown["spec"]["clusterIP"] and shown["spec"]["clusterIPs"] == [shown["spec"]["clusterIP"]]
        nodeport = await dry_create({**service("trial-np"), "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
        assert 30000 <= nodeport["spec"]["ports"][0]["nodePort"] <= 32767
        with pytest.raises(StatusError) as taken:
            await dry_create(service("trial-taken", cluster_ip="10.96.0.80"))
        assert taken.value.code == 422 and "provided IP is already allocated" in taken.value.message
        with pytest.raises(StatusError) as port_taken:
            await dry_create(service("trial-port", node_port=30080))
        assert "provided port is already allocated" in port_taken.value.message
        after = [kv.key for prefix in (IP_CLAIMS, PORT_CLAIMS) for kv in (await store.list(prefix)).items]
        assert after == claims_before, "a dry run claims nothing"
        with pytest.raises(StatusError) as missing:
            await client.get(resources.SERVICES, "trial", "default")
        assert missing.value.code == 404
