"""Assemble and run the API server: PKI, storage, authentication, routes, bootstrap objects.

On first start the server creates its CA, serving certificate and an admin
bearer token, and writes `<data-dir>/admin.kubeconfig`; later starts reuse
them, so a kubeconfig stays valid across restarts. It then makes sure the
namespaces every cluster has exist, and the `kubernetes` Service in `default`
with the Endpoints and EndpointSlice that point at this server.

Besides HTTPS it listens on `<data-dir>/apiserver.sock` (mode 0600), the loopback
the components of the same process (`pyk8s server`'s scheduler and controllers)
use: the same routes and bearer-token authentication, without encrypting every
request twice inside one process (TLS was ~15% of the process's time while the
scheduler bound pods in one process with the API server).

The HTTPS listener bounds what a client that never finishes can hold: TLS
handshake time, header time, body time and the number of pending connections
(`connections.ConnectionLimits`, set from the `APIServerConfig` fields below).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import ipaddress
import logging
import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from controlplane import privatefiles
from controlplane.api import errors
from controlplane.api.resources import ENDPOINTS, ENDPOINTSLICES, NAMESPACES, SERVICES
from controlplane.apiserver import certs, openapi
from controlplane.apiserver.allocators import ServiceAllocator
from controlplane.apiserver.authn import USER_KEY, Authenticator, load_or_make_static_tokens
from controlplane.apiserver.connections import ConnectionLimits, TLSListener
from controlplane.apiserver.handlers import BODY_TIMEOUT_KEY, Handlers, json_response
from controlplane.apiserver.kubelet import KubeletClient
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.strategies import Strategies
from controlplane.apiserver.tokens import TokenIssuer, ensure_signing_key
from controlplane.client import Client
from controlplane.storage.factory import open_store
from controlplane.storage.interface import Store

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNAUTHENTICATED_PATHS = ("/healthz", "/livez", "/readyz", "/version")
LOOPBACK_SOCKET = "apiserver.sock"
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


@dataclass
class APIServerConfig:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    service_cidr: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    cluster_cidr: str = "10.244.0.0/16"
    storage_url: str | None = None  # default: sqlite at <data_dir>/state.db
    advertise_address: str | None = None  # the address the `kubernetes` endpoints point at
    # Connection limits of the HTTPS port (see connections.py; defaults near upstream's where it has one)
    tls_handshake_timeout: float = 10.0
    request_header_timeout: float = 30.0  # also closes idle keep-alive connections
    request_body_timeout: float = 60.0
    max_pending_connections: int = 512
    max_header_size: int = 8190  # bytes of the request line, of one header line and of one header field
    listen_backlog: int = 1024

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(handshake_timeout=self.tls_handshake_timeout,
                                header_timeout=self.request_header_timeout, body_timeout=self.request_body_timeout,
                                max_pending_connections=self.max_pending_connections,
                                max_line_size=self.max_header_size, max_field_size=self.max_header_size,
                                backlog=self.listen_backlog)


class APIServer:
    def __init__(self, config: APIServerConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.registry: Registry | None = None
        self.runner: web.AppRunner | None = None
        self.token = ""
        self.port = config.secure_port
        self.pki: certs.PKI | None = None
        self.kubelets: KubeletClient | None = None
        self.tokens: TokenIssuer | None = None
        self.authenticator: Authenticator | None = None
        self.loopback_socket: Path | None = None  # None when the data dir's path is too long for one
        self.listener: TLSListener | None = None

    @property
    def url(self) -> str:
        host = self.config.bind_address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"https://{host}:{self.port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.config.data_dir / "admin.kubeconfig"

    async def start(self) -> None:
        cfg = self.config
        privatefiles.prepare_data_dir(cfg.data_dir, skip=("agent",))  # 0700; the all-in-one agent's own dir aside
        allocator_net = ipaddress.ip_network(cfg.service_cidr)
        service_ip = str(allocator_net.network_address + 1)
        self.pki = await asyncio.to_thread(certs.ensure_pki, cfg.data_dir / "pki", cfg.bind_address, service_ip)
        self.tokens = TokenIssuer(ensure_signing_key(cfg.data_dir / "pki" / "sa.key"))
        self.store = open_store(cfg.storage_url or f"sqlite://{cfg.data_dir / 'state.db'}")
        await self.store.start()
        allocator = ServiceAllocator(self.store, cfg.service_cidr, cfg.service_node_port_range)
        self.registry = Registry(self.store, Strategies(self.store, allocator))
        self.authenticator = Authenticator(load_or_make_static_tokens(cfg.data_dir / "tokens.csv"), self.tokens,
                                           self.registry)
        self.token = self.authenticator.admin_token()
        await allocator.claim_stored_services()
        await self._bootstrap(allocator)

        app = web.Application(middlewares=[self._errors_middleware, self._auth_middleware],
                              client_max_size=4 * 1024 * 1024)
        app[BODY_TIMEOUT_KEY] = cfg.request_body_timeout
        self.kubelets = KubeletClient(self.pki.kubelet_client_cert, self.pki.kubelet_client_key)
        handlers = Handlers(self.registry, self.tokens, self.kubelets, self.authenticator)
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._health)
        app.router.add_get("/version", handlers.version)
        app.router.add_get("/api", handlers.discovery_root)
        app.router.add_get("/apis", handlers.discovery_root)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_index)
        app.router.add_get("/openapi/v3/{path:.*}", self._openapi_doc)
        app.router.add_route("*", "/api/{tail:.*}", handlers.resource)
        app.router.add_route("*", "/apis/{tail:.*}", handlers.resource)

        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(self.pki.serving_cert, self.pki.serving_key)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
        await self.runner.setup()
        assert self.runner.server is not None
        self.listener = TLSListener(self.runner.server, ssl_ctx, cfg.connection_limits())
        self.port = await self.listener.start(cfg.bind_address, cfg.secure_port)  # the OS's choice for port 0
        await self._listen_on_loopback_socket()
        self._write_kubeconfig()
        gc.freeze()  # start-up objects (schemas, OpenAPI, modules) stay out of every later full collection
        log.info("API server listening on %s", self.url)

    async def _listen_on_loopback_socket(self) -> None:
        assert self.runner is not None
        path = self.config.data_dir.resolve() / LOOPBACK_SOCKET
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            log.info("data dir path too long for a unix socket: in-process components use HTTPS")
            return
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(path.lstat().st_mode):
                log.warning("%s exists and is not a socket; in-process components use HTTPS", path)
                return
            path.unlink()  # left by a server that did not stop cleanly
        await web.UnixSite(self.runner, str(path)).start()
        path.chmod(0o600)
        self.loopback_socket = path

    def loopback_client(self, **kw: Any) -> Client:
        """A client for components running in this process: the unix socket, or HTTPS without one."""
        if self.loopback_socket is None:
            return Client.from_kubeconfig(self.admin_kubeconfig, **kw)
        return Client.over_unix_socket(self.loopback_socket, token=self.token, **kw)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        if self.runner:
            await self.runner.cleanup()
            self.runner = None
        if self.loopback_socket is not None:
            with contextlib.suppress(FileNotFoundError):
                self.loopback_socket.unlink()
            self.loopback_socket = None
        if self.kubelets is not None:
            await self.kubelets.close()
            self.kubelets = None
        if self.store:
            await self.store.close()
            self.store = None

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None
        ca = base64.b64encode(self.pki.ca_cert.read_bytes()).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "pyk8s",
            "clusters": [{"name": "pyk8s", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "pyk8s", "context": {"cluster": "pyk8s", "user": "admin"}}],
        }
        privatefiles.write_private(self.admin_kubeconfig, yaml.safe_dump(config, sort_keys=False))

    # -- bootstrap objects -------------------------------------------------------------

    async def _bootstrap(self, allocator: ServiceAllocator) -> None:
        assert self.registry is not None
        for name in SYSTEM_NAMESPACES:
            await self._ensure(NAMESPACES, None, {"metadata": {"name": name}})
        advertise = self.config.advertise_address or self.config.bind_address
        if advertise in ("0.0.0.0", "::", ""):
            advertise = "127.0.0.1"
        port = self.config.secure_port or 6443
        await self._ensure(SERVICES, "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": allocator.first_ip, "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}})
        await self._ensure(ENDPOINTS, "default", {
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": advertise}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})
        await self._ensure(ENDPOINTSLICES, "default", {
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes",
                                                          "endpointslice.kubernetes.io/managed-by":
                                                              "endpointslicemirroring-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [advertise], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})

    async def _ensure(self, rt: Any, namespace: str | None, obj: dict[str, Any]) -> None:
        assert self.registry is not None
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        try:
            await self.registry.get(rt, namespace, obj["metadata"]["name"])
            return  # made by an earlier start
        except errors.StatusError as exc:
            if exc.code != 404:
                raise
        try:
            await self.registry.create(rt, namespace, obj)
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise

    # -- handlers and middleware -----------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        return web.Response(body=openapi.v2_protobuf(), headers={
            "Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return web.Response(body=openapi.index(), content_type="application/json")

    async def _openapi_doc(self, request: web.Request) -> web.Response:
        body = openapi.lookup(request.match_info["path"])
        if body is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return web.Response(body=body, content_type="application/json",
                            headers={"Cache-Control": "public, immutable"})

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path not in UNAUTHENTICATED_PATHS:
            assert self.authenticator is not None
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            found = await self.authenticator.authenticate(token.strip()) if scheme.lower() == "bearer" else None
            if found is None:
                raise errors.unauthorized()
            request[USER_KEY] = found.user
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _errors_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except errors.StatusError as exc:
            return json_response(exc.to_status(), exc.code)
        except web.HTTPException as exc:
            if exc.status == 404:
                return json_response(errors.StatusError(404, "NotFound", "the server could not find the "
                                                        "requested resource").to_status(), 404)
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return json_response(errors.internal_error(str(exc)).to_status(), 500)

