"""The client library against the real API server: verbs, watch, informer resync and recovery."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.client import Client, Informer
from tests.helpers import eventually


async def test_verbs_and_errors(kubeconfig: Path) -> None:
    async with Client.from_kubeconfig(kubeconfig) as client:
        cm = await client.create(resources.CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"},
                                                        "data": {"k": "1"}})
        assert (await client.get(resources.CONFIGMAPS, "a", "default"))["data"] == {"k": "1"}
        patched = await client.patch(resources.CONFIGMAPS, "a", {"data": {"k": "2"}}, "default")
        assert patched["data"] == {"k": "2"}
        with pytest.raises(StatusError) as stale:
            await client.update(resources.CONFIGMAPS, cm)
        assert stale.value.reason == "Conflict" and stale.value.code == 409
        listed = await client.list(resources.CONFIGMAPS, "default", field_selector="metadata.name=a")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
        await client.delete(resources.CONFIGMAPS, "a", "default")
        with pytest.raises(StatusError) as missing:
            await client.get(resources.CONFIGMAPS, "a", "default")
        assert missing.value.reason == "NotFound"


async def test_informer_sees_changes_and_indexes(api_server: APIServer) -> None:
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        seen: list[tuple[str, str]] = []
        informer = Informer(client, resources.CONFIGMAPS, "default")
        informer.add_handler(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                             on_update=lambda old, new: seen.append(("update", new["metadata"]["name"])),
                             on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])))
        informer.add_index("key", lambda o: sorted((o.get("data") or {}).keys()))
        await client.create(resources.CONFIGMAPS, {"metadata": {"name": "pre", "namespace": "default"}})
        await informer.start()
        try:
            await asyncio.wait_for(informer.wait_synced(), 10)
            assert ("add", "pre") in seen
            await client.create(resources.CONFIGMAPS, {"metadata": {"name": "x", "namespace": "default"},
                                                       "data": {"color": "red"}})
            await eventually(lambda: informer.get("default", "x") is not None)
            assert [o["metadata"]["name"] for o in informer.by_index("key", "color")] == ["x"]
            await client.delete(resources.CONFIGMAPS, "pre", "default")
            await eventually(lambda: ("delete", "pre") in seen)
            assert informer.get("default", "pre") is None
        finally:
            await informer.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_informer_survives_api_server_restart(tmp_path: Path) -> None:
    config = APIServerConfig(data_dir=tmp_path / "server", secure_port=_free_port())
    server = APIServer(config)
    await server.start()
    client = Client.from_kubeconfig(server.admin_kubeconfig)
    informer = Informer(client, resources.CONFIGMAPS, "default")
    try:
        await client.create(resources.CONFIGMAPS, {"metadata": {"name": "before", "namespace": "default"}})
        await informer.start()
        await asyncio.wait_for(informer.wait_synced(), 10)
        await server.stop()
        await asyncio.sleep(0.5)
        assert informer.get("default", "before") is not None  # the cache outlives the server
        server = APIServer(config)
        await server.start()
        await client.create(resources.CONFIGMAPS, {"metadata": {"name": "after", "namespace": "default"}})
        await eventually(lambda: informer.get("default", "after") is not None, timeout=30)
    finally:
        await informer.stop()
        await client.close()
        await server.stop()


async def test_watch_from_compacted_revision_is_410_expired(api_server: APIServer) -> None:
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        first = await client.create(resources.CONFIGMAPS, {"metadata": {"name": "c0", "namespace": "default"}})
        for i in range(1, 4):
            await client.create(resources.CONFIGMAPS, {"metadata": {"name": f"c{i}", "namespace": "default"}})
        assert api_server.store is not None
        await api_server.store.compact(await api_server.store.current_revision() - 1)
        with pytest.raises(StatusError) as expired:
            async for _ in client.watch(resources.CONFIGMAPS, "default",
                                        resource_version=first["metadata"]["resourceVersion"]):
                pass
        assert expired.value.code == 410 and expired.value.reason == "Expired"


async def _events(client: Client, count: int, label_selector: str | None = None,
                  field_selector: str | None = None) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    async for event in client.watch(resources.CONFIGMAPS, "default", resource_version="1", allow_bookmarks=False,
                                    label_selector=label_selector, field_selector=field_selector):
        seen.append((event.type, event.object["metadata"]["name"],
                     (event.object["metadata"].get("labels") or {}).get("tier", "")))
        if len(seen) == count:
            return seen
    return seen


async def test_watch_event_types_with_and_without_selectors(kubeconfig: Path) -> None:
    """ADDED/MODIFIED/DELETED for every watcher; an object that leaves a selector is DELETED for its
    watchers and one that enters it ADDED, as upstream's watch cache sends them."""
    async with Client.from_kubeconfig(kubeconfig) as client:
        cm = await client.create(resources.CONFIGMAPS, {"metadata": {"name": "w", "namespace": "default",
                                                                     "labels": {"tier": "a"}}})
        cm["metadata"]["labels"] = {"tier": "b"}
        cm = await client.update(resources.CONFIGMAPS, cm)
        cm["metadata"]["labels"] = {"tier": "a"}
        await client.update(resources.CONFIGMAPS, cm)
        await client.delete(resources.CONFIGMAPS, "w", "default")
        everything, by_label, by_field = await asyncio.wait_for(asyncio.gather(
            _events(client, 4), _events(client, 4, label_selector="tier=a"),
            _events(client, 4, field_selector="metadata.name=w")), 30)
    assert everything == [("ADDED", "w", "a"), ("MODIFIED", "w", "b"), ("MODIFIED", "w", "a"), ("DELETED", "w", "a")]
    assert by_label == [("ADDED", "w", "a"), ("DELETED", "w", "b"), ("ADDED", "w", "a"), ("DELETED", "w", "a")]
    assert by_field == everything
