"""The async REST client every pyk8s component uses to talk to the API server.

It reads kubeconfigs (token or client certificate, CA data or file) and the
in-cluster service-account files, turns `kind: Status` bodies back into
`StatusError`, retries idempotent reads on connection loss with backoff (a
component must outlive an API server restart), and streams watches.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import yaml

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.api.ndjson import json_lines
from controlplane.api.resources import ResourceType

log = logging.getLogger(__name__)
Obj = dict[str, Any]
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PATCH_CONTENT_TYPES = {
    "json": "application/json-patch+json", "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json", "apply": "application/apply-patch+yaml",
}
RETRIABLE_CODES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: Obj


def _data_or_file(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return (path if path.is_absolute() else base / path).read_bytes()
    return None


class Client:
    def __init__(self, server: str, *, token: str | None = None, ca_data: bytes | None = None,
                 cert_data: bytes | None = None, key_data: bytes | None = None, insecure: bool = False,
                 timeout: float = 30.0, retries: int = 5, unix_socket: Path | None = None) -> None:
        self.server = server.rstrip("/")
        self.unix_socket = unix_socket
        self.token = token
        self.ca_data = ca_data  # the CA this client trusts for the server (the controllers' default root CA)
        self.timeout = timeout
        self.retries = retries
        # A unix socket carries no TLS: no context to build (loading the system CAs takes ~50 ms).
        self._ssl = self._ssl_context(ca_data, cert_data, key_data, insecure) if unix_socket is None else None
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def _ssl_context(ca: bytes | None, cert: bytes | None, key: bytes | None, insecure: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=ca.decode() if ca else None)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert and key:
            # The ssl module loads client keys only from files.
            with tempfile.TemporaryDirectory() as tmp:
                cert_path, key_path = Path(tmp) / "c.crt", Path(tmp) / "c.key"
                cert_path.write_bytes(cert)
                key_path.write_bytes(key)
                ctx.load_cert_chain(cert_path, key_path)
        return ctx

    @classmethod
    def from_kubeconfig(cls, path: Path | str | None = None, **kw: Any) -> Client:
        path = Path(path or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
        config = yaml.safe_load(path.read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in config.get("users", []) if u["name"] == context.get("user")), {})
        base = path.parent
        return cls(cluster["server"], token=user.get("token"),
                   ca_data=_data_or_file(cluster, "certificate-authority", base),
                   cert_data=_data_or_file(user, "client-certificate", base),
                   key_data=_data_or_file(user, "client-key", base),
                   insecure=bool(cluster.get("insecure-skip-tls-verify")), **kw)

    @classmethod
    def over_unix_socket(cls, path: Path, *, token: str, **kw: Any) -> Client:
        """Plain HTTP over the API server's loopback socket (for components in the server's process)."""
        return cls("http://localhost", token=token, unix_socket=path, **kw)

    @classmethod
    def in_cluster(cls, **kw: Any) -> Client:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        return cls(f"https://{host}:{port}", token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
                   ca_data=(SERVICE_ACCOUNT_DIR / "ca.crt").read_bytes(), **kw)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": "pyk8s/0.1"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            connector: aiohttp.BaseConnector = (
                aiohttp.TCPConnector(ssl=self._ssl, limit=100) if self._ssl is not None
                else aiohttp.UnixConnector(path=str(self.unix_socket), limit=100))
            self._session = aiohttp.ClientSession(
                headers=headers, connector=connector,
                json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    # -- the request loop ------------------------------------------------------------

    async def request(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Obj:
        raw = await self.request_bytes(method, path, query=query, body=body, content_type=content_type)
        return orjson.loads(raw) if raw else {}

    async def request_bytes(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                            body: Any = None, content_type: str = "application/json") -> bytes:
        """The response body as sent (logs are text, not JSON); errors raised as StatusError."""
        url = self.server + path
        params = {k: ("true" if v is True else str(v)) for k, v in (query or {}).items()
                  if v is not None and v is not False}
        if params:
            url += "?" + urlencode(params)
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        idempotent = method in ("GET", "HEAD")
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                async with self._http().request(method, url, data=data, headers={"Content-Type": content_type},
                                                timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                    raw = await resp.read()
                    if resp.status < 400:
                        return raw
                    error = self._error(resp.status, raw)
                    if idempotent and resp.status in RETRIABLE_CODES and attempt < self.retries:
                        raise _Retry(error)
                    raise error
            except (aiohttp.ClientConnectionError, TimeoutError, _Retry) as exc:
                if not idempotent or attempt == self.retries:
                    if isinstance(exc, _Retry):
                        raise exc.error from None
                    raise
                log.debug("%s %s failed (%s); retrying in %.1fs", method, path, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _error(code: int, raw: bytes) -> StatusError:
        try:
            body = orjson.loads(raw)
            if isinstance(body, dict) and body.get("kind") == "Status":
                return StatusError.from_status(body, code)
        except orjson.JSONDecodeError:
            pass
        return StatusError(code, "Unknown", raw.decode(errors="replace")[:500])

    # -- verbs ---------------------------------------------------------------------------

    @staticmethod
    def _ns(rt: ResourceType, namespace: str | None, obj: Obj | None = None) -> str | None:
        if not rt.namespaced:
            return None
        return namespace or ((obj or {}).get("metadata") or {}).get("namespace") or None

    async def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", rt.path(self._ns(rt, namespace), name))

    async def list(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> Obj:
        query = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
                 "continue": continue_, "resourceVersion": resource_version}
        return await self.request("GET", rt.path(self._ns(rt, namespace)), query=query)

    async def create(self, rt: ResourceType, obj: Obj, namespace: str | None = None) -> Obj:
        body = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        return await self.request("POST", rt.path(self._ns(rt, namespace, obj)), body=body)

    async def update(self, rt: ResourceType, obj: Obj, subresource: str | None = None) -> Obj:
        md = obj["metadata"]
        body = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        return await self.request("PUT", rt.path(self._ns(rt, None, obj), md["name"], subresource), body=body)

    async def patch(self, rt: ResourceType, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None, field_manager: str | None = None,
                    force: bool | None = None) -> Obj:
        content_type = PATCH_CONTENT_TYPES[patch_type]
        body = patch if isinstance(patch, bytes) else orjson.dumps(patch)
        return await self.request("PATCH", rt.path(self._ns(rt, namespace), name, subresource), body=body,
                                  content_type=content_type,
                                  query={"fieldManager": field_manager, "force": force})

    async def delete(self, rt: ResourceType, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Obj | None = None) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        return await self.request("DELETE", rt.path(self._ns(rt, namespace), name), body=options)

    async def pod_logs(self, name: str, namespace: str, **options: Any) -> str:
        """pods/log with upstream's options (container, previous, tailLines, sinceSeconds, timestamps ...)."""
        raw = await self.request_bytes("GET", resources.PODS.path(namespace, name, "log"), query=options)
        return raw.decode(errors="replace")

    async def create_subresource(self, rt: ResourceType, name: str, subresource: str, body: Obj,
                                 namespace: str | None = None) -> Obj:
        return await self.request("POST", rt.path(self._ns(rt, namespace), name, subresource), body=body)

    async def watch(self, rt: ResourceType, namespace: str | None = None, *, label_selector: str | None = None,
                    field_selector: str | None = None, resource_version: str | None = None,
                    allow_bookmarks: bool = True, timeout_seconds: int | None = None) -> AsyncIterator[WatchEvent]:
        """Events of one watch request; ends when the server closes the stream.

        An ERROR event (e.g. 410 Expired) is raised as StatusError, so callers relist.
        """
        query = {"watch": "true", "labelSelector": label_selector, "fieldSelector": field_selector,
                 "resourceVersion": resource_version, "allowWatchBookmarks": allow_bookmarks,
                 "timeoutSeconds": timeout_seconds}
        params = {k: ("true" if v is True else str(v)) for k, v in query.items() if v not in (None, False)}
        url = self.server + rt.path(self._ns(rt, namespace)) + "?" + urlencode(params)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=None)
        async with self._http().get(url, timeout=timeout) as resp:
            if resp.status >= 400:
                raise self._error(resp.status, await resp.read())
            async for event in json_lines(resp.content):
                if event.get("type") == "ERROR":
                    raise StatusError.from_status(event.get("object") or {}, 500)
                yield WatchEvent(event["type"], event["object"])


class _Retry(Exception):
    def __init__(self, error: StatusError) -> None:
        super().__init__(str(error))
        self.error = error
