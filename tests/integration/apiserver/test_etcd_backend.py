"""The API server on etcd instead of SQLite: the same API, the same errors, restart onto the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client


async def test_api_server_on_etcd_survives_restart(clean_etcd: str, tmp_path: Path) -> None:
    config = APIServerConfig(data_dir=tmp_path / "server", secure_port=0,
                             storage_url="etcd://" + clean_etcd.removeprefix("http://"))
    server = APIServer(config)
    await server.start()
    try:
        async with Client.from_kubeconfig(server.admin_kubeconfig) as client:
            cm = await client.create(resources.CONFIGMAPS, {"metadata": {"name": "kept", "namespace": "default"},
                                                           "data": {"k": "v"}})
            await client.patch(resources.CONFIGMAPS, "kept", {"data": {"k": "w"}}, "default")
            with pytest.raises(StatusError) as stale:
                await client.update(resources.CONFIGMAPS, cm)
            assert stale.value.reason == "Conflict"
    finally:
        await server.stop()
    server = APIServer(config)
    await server.start()
    try:
        async with Client.from_kubeconfig(server.admin_kubeconfig) as client:
            assert (await client.get(resources.CONFIGMAPS, "kept", "default"))["data"] == {"k": "w"}
            svc = await client.get(resources.SERVICES, "kubernetes", "default")
            assert svc["spec"]["clusterIP"] == "10.96.0.1"
    finally:
        await server.stop()


async def test_two_api_servers_on_one_etcd_never_hand_out_an_address_twice(clean_etcd: str, tmp_path: Path) -> None:
    """Service ClusterIPs and NodePorts are claimed in the shared store, not under one server's lock."""
    import asyncio

    url = "etcd://" + clean_etcd.removeprefix("http://")
    servers = [APIServer(APIServerConfig(data_dir=tmp_path / f"server{i}", secure_port=0, storage_url=url,
                                         service_cidr="10.96.0.0/24", service_node_port_range="30000-30100"))
               for i in range(2)]
    for server in servers:
        await server.start()
    try:
        clients = [Client.from_kubeconfig(server.admin_kubeconfig) for server in servers]

        async def create(client: Client, name: str) -> None:
            await client.create(resources.SERVICES, {
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]}})

        try:
            await asyncio.gather(*(create(clients[i % 2], f"svc{i}") for i in range(30)))
            services = (await clients[0].list(resources.SERVICES, "default"))["items"]
        finally:
            for client in clients:
                await client.close()
        ips = [s["spec"]["clusterIP"] for s in services]
        ports = [s["spec"]["ports"][0]["nodePort"] for s in services if s["spec"]["type"] == "NodePort"]
        assert len(services) == 31  # and the `kubernetes` Service
        assert len(set(ips)) == len(ips)
        assert len(set(ports)) == len(ports) == 30
    finally:
        for server in servers:
            await server.stop()
