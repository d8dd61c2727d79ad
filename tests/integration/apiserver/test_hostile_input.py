"""Hostile input, by class: each case gets upstream's status code, reason and message, and afterwards
/readyz and a GET from another client still answer and a sentinel object is unchanged.

Classes: encodings, depth, types at decode, query parameters, patches, apply, connections, credentials in
logs. The server runs with tight connection limits so the connection cases finish in a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml

from controlplane.apiserver.server import APIServer, APIServerConfig

CM = "/api/v1/namespaces/default/configmaps"
SENTINEL = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sentinel"}, "data": {"keep": "me"}}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[APIServer]:
    api = APIServer(APIServerConfig(data_dir=tmp_path / "server", secure_port=0, tls_handshake_timeout=1.0,
                                    request_header_timeout=1.5, request_body_timeout=1.5,
                                    max_pending_connections=20))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def _ssl(server: APIServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.config.data_dir / "pki" / "ca.crt"))


def _token(server: APIServer) -> str:
    token: str = yaml.safe_load(server.admin_kubeconfig.read_text())["users"][0]["user"]["token"]
    return token


@pytest.fixture
async def http(server: APIServer) -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession(base_url=server.url, connector=aiohttp.TCPConnector(ssl=_ssl(server)),
                                    headers={"Authorization": f"Bearer {_token(server)}"})
    async with session.post(CM, data=orjson.dumps(SENTINEL), headers={"Content-Type": "application/json"}) as r:
        assert r.status == 201
    yield session
    await session.close()


async def assert_healthy(server: APIServer) -> None:
    """Another client: /readyz and a GET answer within 1 s, and the sentinel is as it was."""
    async with aiohttp.ClientSession(base_url=server.url, connector=aiohttp.TCPConnector(ssl=_ssl(server)),
                                     headers={"Authorization": f"Bearer {_token(server)}"},
                                     timeout=aiohttp.ClientTimeout(total=1.0)) as other:
        async with other.get("/readyz") as resp:
            assert resp.status == 200
        async with other.get(CM + "/sentinel") as resp:
            assert resp.status == 200
            assert (await resp.json())["data"] == {"keep": "me"}
        async with other.get(CM) as resp:
            assert resp.status == 200


async def send(http: aiohttp.ClientSession, method: str, path: str, body: bytes | None = None,
               ctype: str = "application/json") -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.request(method, path, data=body, headers={"Content-Type": ctype} if body is not None
                            else None) as resp:
        return resp.status, orjson.loads(await resp.read()), resp


def assert_status(payload: dict[str, Any], code: int, reason: str, message: str, exact: bool = True) -> None:
    assert payload["kind"] == "Status" and payload["code"] == code and payload["reason"] == reason, payload
    if exact:
        assert payload["message"] == message, payload["message"]
    else:
        assert message in payload["message"], payload["message"]


_LEVELS = b"abcdefghi"  # the billion-laughs shape: 9 levels, each nine aliases of the one before
BOMB = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
    b"%c: &%c [%s]\n" % (_LEVELS[i], _LEVELS[i], b",".join([b"*%c" % _LEVELS[i - 1]] * 9)) for i in range(1, 9))


# -- encodings -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    (b"kind: ConfigMap\napiVersion: v1\nmetadata: {name: bomb}\ndata:\n  " + BOMB.replace(b"\n", b"\n  "),
     "yaml: document contains excessive aliasing"),
    (b'metadata: {name: s}\ndata: {a: "\\ud800"}', "could not be decoded: yaml: line 2: found invalid Unicode "
     "character escape code"),
    (b"metadata: {name: k}\ndata: {[a]: b}", "unsupported map key of type: []interface {}"),
    (b"metadata: {name: n}\ndata: {a: .nan}", "json: unsupported value: NaN"),
])
async def test_yaml_encodings(server: APIServer, http: aiohttp.ClientSession, body: bytes, message: str) -> None:
    status, payload, _ = await send(http, "POST", CM, body, "application/yaml")
    assert status == 400
    assert_status(payload, 400, "BadRequest", message, exact=False)
    if "could not be decoded" not in message:
        assert payload["message"].startswith("the object provided is unrecognized (must be of type ConfigMap): ")
    await assert_healthy(server)


async def test_yaml_conversions_as_sigs_yaml(server: APIServer, http: aiohttp.ClientSession) -> None:
    body = b"metadata: {name: conv, labels: {1: a, true: b}}\ndata: {big: x}\nbinaryData: {}\n"
    status, payload, _ = await send(http, "POST", CM, body, "application/yaml")
    assert status == 201, payload
    assert payload["metadata"]["labels"] == {"1": "a", "true": "b"}
    await assert_healthy(server)


async def test_large_yaml_does_not_stall_other_clients(server: APIServer, http: aiohttp.ClientSession) -> None:
    data = "".join(f"  k{i}: v{i}\n" for i in range(40_000))
    body = f"metadata: {{name: large}}\ndata:\n{data}".encode()
    post = asyncio.create_task(send(http, "POST", CM, body, "application/yaml"))
    await asyncio.sleep(0.05)
    answered_during = 0
    while not post.done():
        await assert_healthy(server)  # each within 1 s while the large body is being decoded
        answered_during += 1
    status, payload, _ = await post
    assert status == 201, payload
    assert answered_during >= 1


# -- depth ---------------------------------------------------------------------------------------------------

def _nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_json_too_deep_is_400_and_lists_and_watches_keep_working(server: APIServer,
                                                                      http: aiohttp.ClientSession) -> None:
    body = orjson.dumps({"metadata": {"name": "deep", "annotations": {}}, "data": {}, "x": _nested(200)})
    status, payload, _ = await send(http, "POST", CM, body)
    assert_status(payload, 400, "BadRequest", "the object provided is unrecognized (must be of type ConfigMap): "
                  "invalid character '{' exceeded max depth (", exact=False)
    assert status == 400
    deep_yaml = b"metadata: {name: deepy}\nx: " + b"[" * 130 + b"]" * 130
    status, payload, _ = await send(http, "POST", CM, deep_yaml, "application/yaml")
    assert status == 400 and "yaml: exceeded max depth of 128" in payload["message"]
    async with http.get(CM, params={"watch": "1", "timeoutSeconds": "1"}) as resp:
        lines = [orjson.loads(line) for line in (await resp.read()).splitlines()]
        assert resp.status == 200 and {e["type"] for e in lines} == {"ADDED"}
    await assert_healthy(server)


async def test_alias_expanding_past_the_depth_limit(server: APIServer, http: aiohttp.ClientSession) -> None:
    deep = "[" * 70 + "]" * 70
    body = f"metadata: {{name: aliased}}\ndata: {{}}\nx: &d {deep}\ny: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" \
           f"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*d]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
    status, payload, _ = await send(http, "POST", CM, body.encode(), "application/yaml")
    assert status == 400 and "yaml: exceeded max depth of 128" in payload["message"]
    await assert_healthy(server)


# -- types at decode -----------------------------------------------------------------------------------------

async def test_yaml_integer_out_of_range_becomes_a_float_as_upstream(server: APIServer,
                                                                   http: aiohttp.ClientSession) -> None:
    body = b"metadata: {name: big}\ndata: {a: 99999999999999999999999}\n"
    status, payload, _ = await send(http, "POST", CM, body, "application/yaml")
    assert status == 400
    assert_status(payload, 400, "BadRequest", 'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: '
                  "cannot unmarshal number into Go struct field ConfigMap.data of type string")
    await assert_healthy(server)


# -- query parameters ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "query", "code", "reason", "message"), [
    ("GET", CM, {"limit": str(2 ** 64)}, 400, "BadRequest",
     'strconv.ParseInt: parsing "18446744073709551616": value out of range'),
    ("GET", CM, {"limit": "abc"}, 400, "BadRequest", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("GET", CM, {"watch": "1", "timeoutSeconds": "abc"}, 400, "BadRequest",
     'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("DELETE", CM + "/sentinel", {"gracePeriodSeconds": "abc"}, 400, "BadRequest",
     'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("GET", CM, {"resourceVersionMatch": "Bogus", "resourceVersion": "1"}, 422, "Invalid",
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "Bogus": supported values: '
     '"Exact", "NotOlderThan", ""'),
    ("POST", CM, {"fieldValidation": "Bogus"}, 422, "Invalid",
     'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": supported values: '
     '"", "Ignore", "Strict", "Warn"'),
    ("PUT", CM + "/sentinel", {"fieldManager": "m" * 129}, 422, "Invalid",
     'UpdateOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes'),
    ("POST", CM, {"fieldManager": "a\x01b"}, 422, "Invalid",
     'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Invalid value: "a\\x01b": invalid character U+0001 '
     '(at position 1)'),
])
async def test_query_parameters(server: APIServer, http: aiohttp.ClientSession, method: str, path: str,
                                query: dict[str, str], code: int, reason: str, message: str) -> None:
    body = orjson.dumps(SENTINEL) if method in ("POST", "PUT") else None
    async with http.request(method, path, params=query, data=body,
                            headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == code  # a watch refused before its stream starts
        assert resp.headers["Content-Type"].startswith("application/json")
        assert_status(orjson.loads(await resp.read()), code, reason, message)
    await assert_healthy(server)


# -- field validation: duplicates and unknown fields ---------------------------------------------------------

async def test_duplicates_and_unknown_fields(server: APIServer, http: aiohttp.ClientSession) -> None:
    dup = b'{"metadata": {"name": "dup"}, "data": {"a": "1", "a": "2"}}'
    status, payload, _ = await send(http, "POST", CM + "?fieldValidation=Strict", dup)
    assert status == 400
    assert_status(payload, 400, "BadRequest", 'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                  'strict decoding error: duplicate field "a"')
    status, payload, _ = await send(http, "POST", CM + "?fieldValidation=Strict",
                                    b"metadata: {name: dupy}\ndata:\n  a: '1'\n  a: '2'\n", "application/yaml")
    assert status == 400
    assert_status(payload, 400, "BadRequest", 'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                  'strict decoding error: yaml: unmarshal errors:\n  line 4: key "a" already set in map')
    async with http.post(CM, params={"fieldValidation": "Warn"}, data=b'{"metadata": {"name": "warned"}, '
                         b'"data": {"a": "1", "a": "2"}, "spec": {"foo": 1}}',
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 201
        assert resp.headers["Warning"] == '299 - "duplicate field \\"a\\"", 299 - "unknown field \\"spec\\""'
        stored = await resp.json()
        assert "spec" not in stored and stored["data"] == {"a": "2"}
    status, stored, _ = await send(http, "POST", CM + "?fieldValidation=Ignore",
                                   b'{"metadata": {"name": "ignored", "bogus": 1}, "extra": {"x": 1}}')
    assert status == 201 and "extra" not in stored and "bogus" not in stored["metadata"]
    status, fetched, _ = await send(http, "GET", CM + "/ignored")
    assert "extra" not in fetched and "bogus" not in fetched["metadata"]
    await assert_healthy(server)


# -- patches -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ops", "code", "reason", "message"), [
    ([{"op": "replace", "path": "/metadata/name", "value": "other"}], 400, "BadRequest",
     "the name of the object (other) does not match the name on the URL (sentinel)"),
    ([{"op": "replace", "path": "/metadata/uid", "value": "not-the-uid"}], 422, "Invalid",
     'ConfigMap "sentinel" is invalid: metadata.uid: Invalid value: "not-the-uid": field is immutable'),
])
async def test_json_patch_cannot_change_identity(server: APIServer, http: aiohttp.ClientSession,
                                                 ops: list[dict[str, Any]], code: int, reason: str,
                                                 message: str) -> None:
    status, payload, _ = await send(http, "PATCH", CM + "/sentinel", orjson.dumps(ops),
                                    "application/json-patch+json")
    assert status == code
    assert_status(payload, code, reason, message)
    await assert_healthy(server)


async def test_too_deep_merge_patch(server: APIServer, http: aiohttp.ClientSession) -> None:
    body = b'{"x": ' + b'{"a": ' * 300 + b"1" + b"}" * 301
    status, payload, _ = await send(http, "PATCH", CM + "/sentinel", body, "application/merge-patch+json")
    assert status == 400
    assert_status(payload, 400, "BadRequest", "error decoding patch: invalid character '{' exceeded max depth")
    await assert_healthy(server)


# -- apply ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    (b"metadata: {name: sentinel}\n", "invalid object type: /, Kind="),
    (b"apiVersion: v1\nkind: Secret\nmetadata: {name: sentinel}\n", "invalid object type: /v1, Kind=Secret"),
    (b"apiVersion: apps/v1\nkind: ConfigMap\nmetadata: {name: sentinel}\n",
     "invalid object type: apps/v1, Kind=ConfigMap"),
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
     "the name of the object (other) does not match the name on the URL (sentinel)"),
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sentinel}\ndata: " + BOMB.split(b"\n")[0][3:],
     ""),  # a well-formed small alias: accepted below
])
async def test_apply_body_must_match_the_url(server: APIServer, http: aiohttp.ClientSession, body: bytes,
                                             message: str) -> None:
    status, payload, _ = await send(http, "PATCH", CM + "/sentinel?fieldManager=t", body,
                                    "application/apply-patch+yaml")
    if not message:
        assert status == 400 and "cannot unmarshal array into Go struct field" in payload["message"]
    else:
        assert status == 400
        assert_status(payload, 400, "BadRequest", message)
    await assert_healthy(server)


async def test_apply_alias_bomb_and_strict_duplicates(server: APIServer, http: aiohttp.ClientSession) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sentinel}\nx:\n  " + BOMB.replace(b"\n", b"\n  ")
    status, payload, _ = await send(http, "PATCH", CM + "/sentinel?fieldManager=t", body,
                                    "application/apply-patch+yaml")
    assert status == 400
    assert_status(payload, 400, "BadRequest", "error decoding YAML: error converting YAML to JSON: yaml: document "
                  "contains excessive aliasing")
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sentinel}\ndata:\n  keep: me\n  keep: me\n"
    status, payload, _ = await send(http, "PATCH", CM + "/sentinel?fieldManager=t&fieldValidation=Strict", body,
                                    "application/apply-patch+yaml")
    assert status == 400
    assert_status(payload, 400, "BadRequest", "error strict decoding YAML: error converting YAML to JSON: yaml: "
                  'unmarshal errors:\n  line 6: key "keep" already set in map')
    await assert_healthy(server)


# -- connections ---------------------------------------------------------------------------------------------

async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass
        return True
    except TimeoutError:
        return False


async def test_slow_headers_and_unfinished_handshakes_are_cut(server: APIServer,
                                                             http: aiohttp.ClientSession) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=_ssl(server),
                                                   server_hostname="127.0.0.1")
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
    await writer.drain()
    assert await _closed_within(reader, 5.0)  # header timeout 1.5 s
    writer.close()
    raw = socket.create_connection(("127.0.0.1", server.port))  # TCP only: no ClientHello ever
    raw.setblocking(False)
    try:  # handshake timeout 1 s: the server closes
        assert await asyncio.wait_for(asyncio.get_running_loop().sock_recv(raw, 1), 5.0) == b""
    finally:
        raw.close()
    await assert_healthy(server)


async def test_slow_body_is_cut_with_a_timeout_status(server: APIServer, http: aiohttp.ClientSession) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=_ssl(server),
                                                   server_hostname="127.0.0.1")
    writer.write(f"POST {CM} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {_token(server)}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.read(65536), 5.0)
    assert head.startswith(b"HTTP/1.1 504 ")
    assert orjson.loads(head.split(b"\r\n\r\n", 1)[1])["reason"] == "Timeout"
    writer.close()
    await assert_healthy(server)


async def test_pending_connections_are_capped(server: APIServer, http: aiohttp.ClientSession) -> None:
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]  # limit 20
    try:
        await asyncio.sleep(0.2)
        assert server.listener is not None and server.listener.gate.pending <= 20
        assert server.listener.gate.refused >= 20
    finally:
        for sock in held:
            sock.close()
    await asyncio.sleep(0.2)
    await assert_healthy(server)


@pytest.mark.parametrize("request_bytes", [
    b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
    b"G(T /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
])
async def test_malformed_requests_get_a_status(server: APIServer, http: aiohttp.ClientSession,
                                               request_bytes: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=_ssl(server),
                                                   server_hostname="127.0.0.1")
    writer.write(request_bytes)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5.0)
    writer.close()
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    status = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert status["kind"] == "Status" and status["reason"] == "BadRequest" and status["code"] == 400
    await assert_healthy(server)


# -- credentials in logs -------------------------------------------------------------------------------------

async def test_folded_authorization_header_reaches_neither_log_nor_body(server: APIServer,
                                                                       http: aiohttp.ClientSession,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    token = _token(server)
    caplog.set_level(logging.DEBUG)
    for folded in (f"Authorization: Bearer\r\n {token}\r\n", f"X-A: b\r\n\tAuthorization: Bearer {token}\r\n",
                   f"Authorization: Bearer {token}\x01\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=_ssl(server),
                                                       server_hostname="127.0.0.1")
        writer.write(f"GET {CM} HTTP/1.1\r\nHost: x\r\n{folded}\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 5.0)
        writer.close()
        assert answer[:10] in (b"HTTP/1.0 4", b"HTTP/1.1 4"), answer
        assert token.encode() not in answer
        assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["kind"] == "Status"
    assert token not in caplog.text
    assert "Traceback" not in caplog.text
    await assert_healthy(server)


async def test_unauthenticated_garbage_tokens_log_no_traceback(server: APIServer, http: aiohttp.ClientSession,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_ssl(server))) as anonymous:
        for token in ("a.b.c", "x" * 5000, "é\udcff"):
            headers = {"Authorization": "Bearer " + token.encode("utf-8", "surrogateescape").decode("latin-1")}
            async with anonymous.get(server.url + CM, headers=headers) as resp:
                assert resp.status == 401
                assert_status(await resp.json(), 401, "Unauthorized", "Unauthorized")
    assert "Traceback" not in caplog.text and "unhandled error" not in caplog.text
    await assert_healthy(server)


async def test_an_unencodable_stored_object_breaks_neither_lists_nor_watches(server: APIServer,
                                                                            http: aiohttp.ClientSession) -> None:
    """An object stored before depth was bounded (254 levels: orjson stores it, but cannot encode it inside a
    list or a watch event) is left out of lists and watches instead of turning them into 500s."""
    from controlplane.api.resources import CONFIGMAPS

    assert server.registry is not None
    async with http.get(CM, params={"watch": "1", "timeoutSeconds": "2"}) as watch:
        assert watch.status == 200
        await server.registry.create(CONFIGMAPS, "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                                             "metadata": {"name": "broken"}, "x": _nested(253)})
        await server.registry.create(CONFIGMAPS, "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                                             "metadata": {"name": "after"}})
        events = [orjson.loads(line) for line in (await watch.read()).splitlines()]
    names = [e["object"]["metadata"]["name"] for e in events]
    assert "after" in names and "broken" not in names and all(e["type"] == "ADDED" for e in events)
    status, listed, _ = await send(http, "GET", CM)
    assert status == 200
    assert {i["metadata"]["name"] for i in listed["items"]} >= {"sentinel", "after"}
    assert "broken" not in {i["metadata"]["name"] for i in listed["items"]}
    await assert_healthy(server)


# -- subresources ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "shown"), [(-9.3e15, "number"), ("3", "string"), ([3], "array"), (True, "bool")])
async def test_scale_put_with_a_spec_that_is_no_object(server: APIServer, http: aiohttp.ClientSession,
                                                        spec: object, shown: str) -> None:
    """Found by schemathesis (tests/FUZZING.md): it was a 500 `'float' object has no attribute 'get'`."""
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "serviceName": "db",
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    status, _, _ = await send(http, "POST", "/apis/apps/v1/namespaces/default/statefulsets", orjson.dumps(sts))
    assert status == 201
    body = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "db"}, "spec": spec}
    status, payload, _ = await send(http, "PUT", "/apis/apps/v1/namespaces/default/statefulsets/db/scale",
                                    orjson.dumps(body))
    assert status == 400
    assert_status(payload, 400, "BadRequest", 'Scale in version "v1" cannot be handled as a Scale: json: cannot '
                  f"unmarshal {shown} into Go struct field Scale.spec of type v1.ScaleSpec")
    await assert_healthy(server)
