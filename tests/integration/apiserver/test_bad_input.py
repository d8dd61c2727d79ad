"""Bad input gets upstream status codes and Status bodies; nothing stored is harmed."""

from __future__ import annotations

import ssl

import aiohttp
import orjson
import pytest

from controlplane.apiserver.server import APIServer

CM_PATH = "/api/v1/namespaces/default/configmaps"


async def post(http: aiohttp.ClientSession, path: str, body: bytes, ctype: str = "application/json",
               query: str = "") -> tuple[int, dict]:
    async with http.post(path + query, data=body, headers={"Content-Type": ctype}) as resp:
        return resp.status, orjson.loads(await resp.read())


@pytest.mark.parametrize(("body", "ctype", "query", "code", "reason", "text"), [
    (b"{not json", "application/json", "", 400, "BadRequest", "could not be decoded"),
    (b"a: [unclosed", "application/yaml", "", 400, "BadRequest", "could not be decoded"),
    (b'{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}', "application/json", "", 400,
     "BadRequest", "does not match the expected API version"),
    (b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}', "application/json", "", 400,
     "BadRequest", "expected 'ConfigMap'"),
    (b'{"metadata": {"name": "UPPER"}}', "application/json", "", 422, "Invalid", "RFC 1123 subdomain"),
    (b'{"metadata": {"name": "x"}, "dta": {}}', "application/json", "?fieldValidation=Strict", 400,
     "BadRequest", 'unknown field "dta"'),
    (b"\x00\x01", "application/vnd.kubernetes.protobuf", "", 400, "BadRequest", "Kubernetes magic prefix"),
    (b"k8s\x00\x0a\xff", "application/vnd.kubernetes.protobuf", "", 400, "BadRequest", "could not be decoded"),
    (b"name=x", "application/x-www-form-urlencoded", "", 415, "UnsupportedMediaType", "unknown format"),
])
async def test_bad_bodies(http: aiohttp.ClientSession, body: bytes, ctype: str, query: str, code: int,
                          reason: str, text: str) -> None:
    status, payload = await post(http, CM_PATH, body, ctype, query)
    assert status == code
    assert payload["kind"] == "Status" and payload["reason"] == reason and payload["code"] == code
    assert text in payload["message"]


async def test_oversized_body_is_413_and_store_is_intact(http: aiohttp.ClientSession) -> None:
    status, _ = await post(http, CM_PATH, b'{"metadata": {"name": "keep"}, "data": {"a": "b"}}')
    assert status == 201
    huge = orjson.dumps({"metadata": {"name": "big"}, "data": {"a": "x" * (4 * 1024 * 1024)}})
    status, payload = await post(http, CM_PATH, huge)
    assert status == 413 and payload["reason"] == "RequestEntityTooLarge"
    async with http.get(CM_PATH + "/keep") as resp:
        assert resp.status == 200 and (await resp.json())["data"] == {"a": "b"}


async def test_bad_selector_unauthenticated_and_unknown_paths(api_server: APIServer,
                                                              http: aiohttp.ClientSession) -> None:
    async with http.get(CM_PATH, params={"labelSelector": "a in b"}) as resp:
        assert resp.status == 400 and (await resp.json())["reason"] == "BadRequest"
    async with http.get("/api/v1/nosuchthings") as resp:
        assert resp.status == 404 and (await resp.json())["kind"] == "Status"
    ctx = ssl.create_default_context(cafile=str(api_server.config.data_dir / "pki" / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as anonymous:
        async with anonymous.get(api_server.url + CM_PATH) as resp:
            assert resp.status == 401 and (await resp.json())["reason"] == "Unauthorized"
        async with anonymous.get(api_server.url + "/readyz") as resp:
            assert resp.status == 200


async def test_stale_continue_token_is_410(api_server: APIServer, http: aiohttp.ClientSession) -> None:
    for i in range(4):
        await post(http, CM_PATH, orjson.dumps({"metadata": {"name": f"c{i}"}}))
    async with http.get(CM_PATH, params={"limit": "1"}) as resp:
        token = (await resp.json())["metadata"]["continue"]
    for i in range(4, 8):
        await post(http, CM_PATH, orjson.dumps({"metadata": {"name": f"c{i}"}}))
    assert api_server.store is not None
    await api_server.store.compact(await api_server.store.current_revision() - 1)
    async with http.get(CM_PATH, params={"limit": "1", "continue": token}) as resp:
        body = await resp.json()
        assert resp.status == 410 and body["reason"] == "Expired"
