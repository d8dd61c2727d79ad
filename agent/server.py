"""The kubelet's HTTPS endpoint: health, the node's pods, container logs, exec, attach, port-forward.

The API server reaches it for `kubectl logs`, `exec`, `attach` and
`port-forward` (pods/log, pods/exec ... are proxied here, as upstream does; the
streaming ones go on to the runtime's own streaming server). Every path but /healthz needs a client certificate signed by
the cluster CA — the API server presents its `apiserver-kubelet-client`
certificate — so the port can face the node network.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from agent.logs import stream
from agent.runtime import RUNNING, PodRuntime, Runtime
from controlplane.client.streams import proxy_upgrade
from controlplane.privatefiles import private_dir, write_private
from cri.errors import CRIError

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


def ensure_serving_cert(pki_dir: Path, node_name: str, node_ip: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for the kubelet port, as upstream makes when none is given.

    cryptography (~10 MB resident with its OpenSSL bindings) is imported only to
    make a certificate; checking an existing one needs only the standard library.
    """
    private_dir(pki_dir)
    cert_path, key_path = pki_dir / "kubelet.crt", pki_dir / "kubelet.key"
    ips = [node_ip, "127.0.0.1"]
    if cert_path.exists() and key_path.exists() and covers_ips(cert_path.read_bytes(), ips):
        return cert_path, key_path
    from controlplane.client.certs import cert_pem, issue_cert, make_ca, write_key

    ca_cert, ca_key = make_ca(f"{node_name}-ca")
    cert, key = issue_cert(ca_cert, ca_key, node_name, dns_names=[node_name, "localhost"], ips=ips)
    write_private(cert_path, cert + cert_pem(ca_cert))
    write_private(key_path, key)
    write_key(pki_dir / "kubelet-ca.key", ca_key)
    return cert_path, key_path


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
_SAN_OID = bytes.fromhex("551d11")  # 2.5.29.17, subjectAltName


def covers_ips(pem: bytes, ips: list[str]) -> bool:
    """Whether the first certificate in `pem` names every address of `ips` in its subjectAltName."""
    have = san_ips(pem)
    return not ips if have is None else set(ips) <= have


def san_ips(pem: bytes) -> set[str] | None:
    """The iPAddress entries of the first certificate's subjectAltName; None without that extension.

    A few lines of DER reading (RFC 5280 4.1, 4.2.1.6) instead of an X.509 library.
    """
    match = _PEM_CERT.search(pem)
    if match is None:
        raise ValueError("no PEM certificate")
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        _tag, start, end = _tlv(der, 0)  # Certificate
        _tag, start, end = _tlv(der, start)  # TBSCertificate
        for tag, s, e in _children(der, start, end):
            if tag != 0xA3:  # [3] extensions
                continue
            _tag, s, e = _tlv(der, s)  # SEQUENCE OF Extension
            for _tag, xs, xe in _children(der, s, e):
                parts = list(_children(der, xs, xe))  # extnID, critical?, extnValue
                if parts[0][0] != 0x06 or der[parts[0][1]:parts[0][2]] != _SAN_OID:
                    continue
                value_tag, vs, _ve = parts[-1]
                if value_tag != 0x04:
                    raise ValueError("extnValue is not an OCTET STRING")
                _tag, gs, ge = _tlv(der, vs)  # GeneralNames
                return {str(ipaddress.ip_address(der[ns:ne])) for tag, ns, ne in _children(der, gs, ge)
                        if tag == 0x87}  # [7] iPAddress
        return None
    except (IndexError, ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed certificate: {exc}") from None


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at `pos`."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[pos:pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("element longer than its container")
    return tag, pos, pos + length


def _children(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        tag, s, e = _tlv(der, pos)
        yield tag, s, e
        pos = e


class KubeletServer:
    def __init__(self, *, pods: Callable[[], list[Obj]], pod: Callable[[str, str], Obj | None],
                 runtime_pod: Callable[[str], Awaitable[PodRuntime]], streams: Runtime, client_ca: bytes | None,
                 cert: Path, key: Path, bind_address: str, port: int) -> None:
        self.pods = pods
        self.pod = pod
        self.runtime_pod = runtime_pod
        self.streams = streams
        self.client_ca = client_ca
        self.cert = cert
        self.key = key
        self.bind_address = bind_address
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/pods", self.list_pods)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        for verb in ("exec", "attach"):
            app.router.add_route("*", f"/{verb}/{{namespace}}/{{pod}}/{{container}}", self.streaming)
        app.router.add_route("*", "/portForward/{namespace}/{pod}", self.streaming)
        return app

    @web.middleware
    async def _authenticate(self, request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path != "/healthz" and self.client_ca is not None:
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            if not peer:
                return _status(401, "Unauthorized", "Unauthorized: a client certificate of the cluster CA is required")
        return await handler(request)

    async def start(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            context.load_verify_locations(cadata=self.client_ca.decode())
            context.verify_mode = ssl.CERT_OPTIONAL
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind_address, self.port, ssl_context=context)
        await site.start()
        log.info("kubelet server on https://%s:%d", self.bind_address, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def list_pods(self, _request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.pods()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def streaming(self, request: web.Request) -> web.StreamResponse:
        """exec, attach and portForward: ask the runtime for a stream URL, then splice the connection to it."""
        verb = request.path.split("/")[1]
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        pod = self.pod(namespace, name)
        if pod is None:
            return _status(404, "NotFound", f'pod "{name}" not found')
        runtime = await self.runtime_pod(pod["metadata"]["uid"])
        query = request.query

        def flag(*names: str) -> bool:
            return any(query.get(n) in ("1", "true") for n in names)

        try:
            if verb == "portForward":
                sandbox = runtime.sandbox
                if sandbox is None or not sandbox.ready:
                    return _status(400, "BadRequest", f"pod {name} has no running sandbox")
                ports = [int(p) for p in query.getall("port", [])]
                url = await self.streams.port_forward_url(sandbox.id, ports)
            else:
                container = request.match_info["container"]
                target = next((c for c in runtime.history(container) if c.state == RUNNING), None)
                if target is None:
                    return _status(400, "BadRequest", f'container {container} is not running in pod {name}')
                stdin, tty = flag("input", "stdin"), flag("tty")
                stdout, stderr = flag("output", "stdout"), flag("error", "stderr") and not tty
                if verb == "exec":
                    url = await self.streams.exec_url(target.id, query.getall("command", []), stdin=stdin,
                                                      stdout=stdout, stderr=stderr, tty=tty)
                else:
                    url = await self.streams.attach_url(target.id, stdin=stdin, stdout=stdout, stderr=stderr,
                                                        tty=tty)
        except CRIError as exc:
            return _status(500, "InternalError", f"{verb}: {exc.details}")
        return await proxy_upgrade(request, url)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        pod = self.pod(namespace, name)
        if pod is None:
            return _status(404, "NotFound", f'pod "{name}" not found')
        query = request.query
        runtime = await self.runtime_pod(pod["metadata"]["uid"])
        history = runtime.history(container)
        if not history:
            return _status(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: '
                                              "ContainerCreating")
        previous = query.get("previous") in ("true", "1")
        if previous:
            if len(history) < 2:
                return _status(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" '
                                                  "not found")
            chosen = history[1]
        else:
            chosen = history[0]
        try:
            tail = int(query["tailLines"]) if "tailLines" in query else None
            limit = int(query["limitBytes"]) if "limitBytes" in query else None
            since = None
            if "sinceSeconds" in query:
                since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(query["sinceSeconds"]))
            elif "sinceTime" in query:
                since = dt.datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        except ValueError as exc:
            return _status(400, "BadRequest", f"invalid log options: {exc}")
        follow = query.get("follow") in ("true", "1") and not previous
        container_id = chosen.id

        async def still_running() -> bool:
            now = await self.runtime_pod(pod["metadata"]["uid"])
            return any(c.id == container_id and c.state == RUNNING for c in now.containers)

        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for chunk in stream(Path(chosen.log_path), tail_lines=tail, since=since,
                                  timestamps=query.get("timestamps") in ("true", "1"), limit_bytes=limit,
                                  follow=follow, still_running=still_running):
            await response.write(chunk)
        await response.write_eof()
        return response

