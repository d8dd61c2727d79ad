"""The API server's loopback unix socket: what `pyk8s server`'s own scheduler and controllers use."""

from __future__ import annotations

import asyncio
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from controlplane.api import resources
from controlplane.apiserver.server import LOOPBACK_SOCKET, APIServer, APIServerConfig


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pyk8s-lb-"))  # pytest's tmp_path can be too long for a socket
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def server(short_dir: Path) -> AsyncIterator[APIServer]:
    stale = socket.socket(socket.AF_UNIX)  # a socket file left by a server that was killed
    stale.bind(str(short_dir / LOOPBACK_SOCKET))
    stale.close()
    api = APIServer(APIServerConfig(data_dir=short_dir, secure_port=0))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


async def test_in_process_client_uses_the_socket_with_the_same_api(server: APIServer) -> None:
    path = server.loopback_socket
    assert path == server.config.data_dir.resolve() / LOOPBACK_SOCKET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with server.loopback_client() as client:
        assert client.unix_socket == path
        created = await client.create(resources.CONFIGMAPS, {"metadata": {"name": "via-socket"}, "data": {"a": "1"}},
                                      "default")
        watch = client.watch(resources.CONFIGMAPS, "default", resource_version="1")
        event = await asyncio.wait_for(anext(watch), 10)  # a long-running stream over the socket
        assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "via-socket")
    async with server.loopback_client() as again:  # the same object, whichever transport
        fetched = await again.get(resources.CONFIGMAPS, "via-socket", "default")
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]


async def test_the_socket_still_needs_a_token(server: APIServer) -> None:
    assert server.loopback_socket is not None
    connector = aiohttp.UnixConnector(path=str(server.loopback_socket))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get("http://localhost/api/v1/namespaces/default/configmaps") as resp:
            body = orjson.loads(await resp.read())
        assert resp.status == 401
        assert (body["kind"], body["reason"]) == ("Status", "Unauthorized")
        async with http.get("http://localhost/api/v1/namespaces/default/configmaps",
                            headers={"Authorization": "Bearer not-a-token"}) as resp:
            assert resp.status == 401


async def test_stop_removes_the_socket(short_dir: Path) -> None:
    api = APIServer(APIServerConfig(data_dir=short_dir, secure_port=0))
    await api.start()
    path = api.loopback_socket
    assert path is not None and path.exists()
    await api.stop()
    assert not path.exists()


async def test_a_file_that_is_not_a_socket_is_left_alone(short_dir: Path) -> None:
    (short_dir / LOOPBACK_SOCKET).write_text("someone's file")
    api = APIServer(APIServerConfig(data_dir=short_dir, secure_port=0))
    await api.start()
    try:
        assert api.loopback_socket is None
        async with api.loopback_client() as client:
            assert client.unix_socket is None
            await client.get(resources.NAMESPACES, "default")
    finally:
        await api.stop()
    assert (short_dir / LOOPBACK_SOCKET).read_text() == "someone's file"


async def test_a_data_dir_too_long_for_a_socket_falls_back_to_https(short_dir: Path) -> None:
    deep = short_dir / ("d" * 100)
    api = APIServer(APIServerConfig(data_dir=deep, secure_port=0))
    await api.start()
    try:
        assert api.loopback_socket is None
        assert not (deep / LOOPBACK_SOCKET).exists()
        async with api.loopback_client() as client:
            assert client.unix_socket is None and client.server.startswith("https://")
            await client.create(resources.CONFIGMAPS, {"metadata": {"name": "via-https"}}, "default")
            assert (await client.get(resources.CONFIGMAPS, "via-https", "default"))["metadata"]["name"] == "via-https"
    finally:
        await api.stop()
