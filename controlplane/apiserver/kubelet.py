"""The API server's connection to kubelets: pods/log, exec, attach and portforward.

As upstream, the API server finds the pod's node, dials the node's InternalIP on
the kubelet port the node reported (`status.daemonEndpoints.kubeletEndpoint`),
presents its `apiserver-kubelet-client` certificate, and streams the kubelet's
answer back to the client unchanged — `kubectl logs -f` follows through it, and
`kubectl exec -it` / `port-forward` keep their upgraded connection through it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from multidict import MultiDict

from controlplane.api import errors
from controlplane.client.streams import proxy_upgrade

Obj = dict[str, Any]
LOG_OPTIONS = ("follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes")


def node_address(node: Obj) -> tuple[str, int]:
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = addresses.get("InternalIP") or addresses.get("ExternalIP") or addresses.get("Hostname")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not host or not port:
        raise errors.StatusError(503, "ServiceUnavailable",
                                 f'node "{node["metadata"]["name"]}" has not reported its kubelet address yet')
    return str(host), int(port)


def choose_container(pod: Obj, requested: str | None) -> str:
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    if requested:
        if requested not in containers + inits:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    message = (f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]")
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise errors.bad_request(message)


class KubeletClient:
    def __init__(self, client_cert: Path, client_key: Path) -> None:
        self.client_cert = client_cert
        self.client_key = client_key
        self._session: aiohttp.ClientSession | None = None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # kubelets serve self-signed certs (upstream's default too)
        context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl_context()))
        return self._session

    async def stream(self, request: web.Request, verb: str, pod: Obj, node: Obj) -> web.StreamResponse:
        """pods/exec, pods/attach, pods/portforward: the upgraded connection goes on to the kubelet."""
        host, port = node_address(node)
        md = pod["metadata"]
        query = MultiDict(request.query)
        if verb == "portforward":
            path = f"/portForward/{md['namespace']}/{md['name']}"
        else:
            container = choose_container(pod, query.get("container"))
            path = f"/{verb}/{md['namespace']}/{md['name']}/{container}"
            # upstream's kubelet parameter names for the standard streams
            for option, param in (("stdin", "input"), ("stdout", "output"), ("stderr", "error")):
                if query.get(option) in ("true", "1"):
                    query[param] = "1"
        if not request.headers.get("Upgrade"):
            raise errors.bad_request("Upgrade request required")
        return await proxy_upgrade(request, f"https://{host}:{port}{path}", self.ssl_context(),
                                   path=f"{path}?{urlencode(list(query.items()))}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def stream_logs(self, request: web.Request, pod: Obj, node: Obj) -> web.StreamResponse:
        container = choose_container(pod, request.query.get("container"))
        host, port = node_address(node)
        md = pod["metadata"]
        url = f"https://{host}:{port}/containerLogs/{md['namespace']}/{md['name']}/{container}"
        query = {k: v for k, v in request.query.items() if k in LOG_OPTIONS}
        try:
            upstream = await self._http().get(url, params=query, timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=10))
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.StatusError(500, "InternalError",
                                     f'Get "{url}": {exc}') from None
        async with upstream:
            if upstream.status >= 400:
                return web.Response(status=upstream.status, body=await upstream.read(),
                                    content_type=upstream.content_type)
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
