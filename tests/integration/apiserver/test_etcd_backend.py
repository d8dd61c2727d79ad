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
