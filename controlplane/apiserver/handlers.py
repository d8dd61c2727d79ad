"""HTTP handlers: map Kubernetes REST paths and verbs onto the registry.

Paths are parsed by hand rather than through a router table because the
Kubernetes path grammar is context-dependent (`/api/v1/namespaces/x/status`
is a subresource of a namespace, `/api/v1/namespaces/x/pods` a collection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from controlplane.api import errors, meta, patch, printers, resources, schema
from controlplane.api.resources import PODS, ResourceType, lookup
from controlplane.api.selectors import parse_field_selector, parse_label_selector
from controlplane.apiserver import decoding, discovery, fields, options
from controlplane.apiserver.authn import USER_KEY, Authenticator
from controlplane.apiserver.kubelet import KubeletClient
from controlplane.apiserver.pruning import prune_unknown
from controlplane.apiserver.registry import ListOptions, Registry
from controlplane.apiserver.reviews import Reviews
from controlplane.apiserver.tokens import DEFAULT_EXPIRATION, TokenIssuer

log = logging.getLogger(__name__)
Obj = dict[str, Any]
MAX_BODY = 3 * 1024 * 1024
BOOKMARK_INTERVAL = 60.0
TABLE_MEDIA = "as=Table"
# Kinds whose PUT creates a missing object (upstream's AllowCreateOnUpdate); others answer 404.
CREATE_ON_UPDATE = frozenset({"Endpoints", "Lease", "Event"})
PROTOBUF_MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
OBJECT_MEDIA_TYPES = frozenset({"application/json", "application/yaml", "application/x-yaml", "text/yaml"})
WARNINGS_KEY = web.RequestKey("warnings", list[str])  # `Warning` headers for the response
DUPLICATES_KEY = web.RequestKey("duplicates", list[str])  # duplicate keys of the body (Strict/Warn only)
BODY_TIMEOUT_KEY = web.AppKey("body_timeout", float)  # seconds to receive a whole body (upstream: 60)


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_path(parts: list[str]) -> Target:
    """`/api/v1/...` or `/apis/<g>/<v>/...` path segments -> what is addressed."""
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.not_found("", "/".join(parts))
    if rest[:1] == ["watch"]:
        rest = rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = lookup(group, version, rest[2])
        if rt is not None and rt.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest:
        raise errors.not_found("", "/".join(parts))
    rt = lookup(group, version, rest[0])
    if rt is None:
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3 or (sub and sub not in rt.subresources):
        raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
    return Target(rt, namespace, name, sub)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def dumps_list(result: Obj, what: str, key: str = "items") -> bytes:
    """A list body; an item that cannot be encoded (stored before its depth was bounded) is left out and
    logged instead of turning the whole list into a 500."""
    try:
        return orjson.dumps(result)
    except orjson.JSONEncodeError:
        pass
    items = []
    for item in result.get(key) or []:
        try:
            orjson.dumps([[item]])  # at the depth it has inside the list
        except orjson.JSONEncodeError as exc:
            md = (item.get("object") or item).get("metadata") or {} if isinstance(item, dict) else {}
            log.error("left %s %s/%s out of a list: it cannot be encoded (%s)", what, md.get("namespace", ""),
                      md.get("name", ""), exc)
            continue
        items.append(item)
    return orjson.dumps({**result, key: items})


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(obj), status=status, content_type="application/json", headers=headers)


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    for choice in accept.split(","):
        if TABLE_MEDIA in choice and "g=meta.k8s.io" in choice:
            return True
    return False


async def read_body(request: web.Request) -> tuple[bytes, str]:
    if request.content_length and request.content_length > MAX_BODY:
        raise errors.request_entity_too_large("Request entity too large: limit is 3145728")
    chunks: list[bytes] = []
    size = 0
    expected = request.content_length
    try:
        async with asyncio.timeout(request.app.get(BODY_TIMEOUT_KEY, 60.0)):  # a body trickled byte by byte is cut, as upstream's timeout
            # read() returns what has arrived so far, not necessarily the whole body
            while size <= MAX_BODY and (expected is None or size < expected):
                chunk = await request.content.read(MAX_BODY + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except TimeoutError:
        raise errors.timeout("Timeout: request did not complete within the allotted timeout") from None
    body = b"".join(chunks)
    if len(body) > MAX_BODY:
        raise errors.request_entity_too_large("Request entity too large: limit is 3145728")
    # no Content-Type at all means JSON, as upstream reads it (aiohttp would say octet-stream)
    return body, request.content_type if "Content-Type" in request.headers else "application/json"


def _decoded_object(body: bytes, content_type: str, kind: str, duplicates: bool) -> decoding.Decoded:
    if content_type == PROTOBUF_MEDIA_TYPE:
        from controlplane.api import protobuf  # loaded on the first protobuf body: most clients send JSON

        found = decoding.Decoded(protobuf.decode(body))
    elif content_type not in OBJECT_MEDIA_TYPES:
        raise errors.unsupported_media_type(content_type)
    else:
        try:
            found = decoding.decode(body, "yaml" in content_type, duplicates=duplicates)
        except decoding.DecodeError as exc:
            if exc.syntax:
                raise errors.bad_request(f"the body of the request could not be decoded: {exc.detail}") from None
            raise decoding.unrecognized(kind, exc.detail, body) from None
    if not isinstance(found.value, dict):
        raise errors.bad_request("the body of the request must be an object")
    if content_type == PROTOBUF_MEDIA_TYPE:
        try:
            decoding.depth_of(found.value)
        except decoding.DecodeError as exc:
            raise decoding.unrecognized(kind, exc.detail, body) from None
    return found


def decode_object(body: bytes, content_type: str, kind: str = "Object") -> Obj:
    """A small request body (options, bindings, evictions) as an object."""
    value: Obj = _decoded_object(body, content_type, kind, False).value
    return value


async def decode_request_object(request: web.Request, body: bytes, content_type: str, kind: str) -> Obj:
    """The body of a create/update: decoded off the event loop when large; duplicate keys are looked for
    (and kept on the request) only when fieldValidation asks for them."""
    duplicates = request.query.get("fieldValidation") in ("Strict", "Warn")
    found = await decoding.off_loop(len(body), _decoded_object, body, content_type, kind, duplicates)
    if found.duplicates:
        request[DUPLICATES_KEY] = found.duplicates
    value: Obj = found.value
    return value


def _bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


class Handlers:
    def __init__(self, registry: Registry, tokens: TokenIssuer, kubelets: KubeletClient | None,
                 authenticator: Authenticator) -> None:
        self.registry = registry
        self.tokens = tokens
        self.kubelets = kubelets
        self.reviews = Reviews(authenticator)

    # -- discovery -----------------------------------------------------------------

    async def version(self, request: web.Request) -> web.Response:
        return json_response(discovery.VERSION_INFO)

    async def discovery_root(self, request: web.Request) -> web.Response:
        core = request.path.rstrip("/") == "/api"
        accept = request.headers.get("Accept", "")
        for choice in accept.split(","):
            if "as=APIGroupDiscoveryList" in choice and "g=apidiscovery.k8s.io" in choice:
                version = "v2" if "v=v2;" in choice + ";" and "v2beta1" not in choice else "v2beta1"
                body = discovery.aggregated(core, f"apidiscovery.k8s.io/{version}")
                ctype = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                return web.Response(body=dumps(body), headers={"Content-Type": ctype})
        return json_response(discovery.api_versions() if core else discovery.api_group_list())

    async def discovery_group(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "api":
            found = discovery.resource_list("", parts[1])
        elif len(parts) == 2:
            found = discovery.api_group(parts[1])
        else:
            found = discovery.resource_list(parts[1], parts[2])
        if found is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return json_response(found)

    # -- dispatch ----------------------------------------------------------------------

    async def resource(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) <= 3):
            return await self.discovery_group(request)
        target = parse_path(parts)
        method = request.method
        options.validate(method, request.query, listing=target.name is None)
        if not target.rt.stored:
            if method == "POST" and target.name is None:
                return await self.review(request, target)
            raise errors.method_not_supported(target.rt.plural, method)
        watching = "watch" in parts[:4] or _bool(request, "watch")
        if target.name is None:
            if method == "GET":
                return await (self.watch(request, target) if watching else self.list(request, target))
            if method == "POST":
                return await self.create(request, target)
            if method == "DELETE":
                return await self.delete_collection(request, target)
        elif target.subresource in (None, "status", "finalize"):
            if method == "GET":
                return await self.get(request, target)
            if method == "PUT":
                return await self.update(request, target)
            if method == "PATCH":
                return await self.patch(request, target)
            if method == "DELETE" and target.subresource is None:
                return await self.delete(request, target)
        elif target.subresource == "scale":
            return await self.scale(request, target)
        elif target.subresource == "binding" and method == "POST":
            return await self.bind(request, target)
        elif target.subresource == "eviction" and method == "POST":
            return await self.evict(request, target)
        elif target.subresource == "token" and method == "POST":
            return await self.token_request(request, target)
        elif target.subresource == "log" and method == "GET" and target.rt is PODS:
            return await self.pod_log(request, target)
        elif target.subresource in ("exec", "attach", "portforward") and method in ("GET", "POST") \
                and target.rt is PODS:
            return await self.pod_stream(request, target)
        raise errors.method_not_supported(target.rt.plural, method)

    def _namespace(self, target: Target) -> str | None:
        if target.rt.namespaced and target.name is not None and target.namespace is None:
            raise errors.not_found(target.rt.plural, target.name, target.rt.group)
        return target.namespace if target.rt.namespaced else None

    # -- reads -------------------------------------------------------------------------

    async def get(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        obj = await self.registry.get(target.rt, self._namespace(target), target.name)
        obj["apiVersion"], obj["kind"] = target.rt.api_version, target.rt.kind
        if wants_table(request):
            return json_response(printers.to_table(target.rt, [obj], include_object=request.query.get(
                "includeObject", "Metadata"), list_meta={"resourceVersion": obj["metadata"]["resourceVersion"]}))
        return json_response(obj)

    def _list_options(self, request: web.Request, target: Target) -> ListOptions:
        limit_value = max(options.parse_int64("limit", request.query.get("limit", "0") or "0"), 0)
        return ListOptions(
            namespace=target.namespace if target.rt.namespaced else None,
            labels=parse_label_selector(request.query.get("labelSelector")),
            fields=parse_field_selector(request.query.get("fieldSelector"), fields.allowed_fields(target.rt)),
            limit=limit_value,
            continue_token=request.query.get("continue") or None,
            resource_version=request.query.get("resourceVersion"),
        )

    async def list(self, request: web.Request, target: Target) -> web.Response:
        result = await self.registry.list(target.rt, self._list_options(request, target))
        if wants_table(request):
            table = printers.to_table(target.rt, result["items"], include_object=request.query.get(
                "includeObject", "Metadata"), list_meta=result["metadata"])
            return web.Response(body=dumps_list(table, target.rt.plural, "rows"), content_type="application/json")
        return web.Response(body=dumps_list(result, target.rt.plural), content_type="application/json")

    async def watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        opts = self._list_options(request, target)
        opts.limit, opts.continue_token = 0, None
        timeout = request.query.get("timeoutSeconds")
        table = wants_table(request)
        bookmarks = _bool(request, "allowWatchBookmarks")
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        events: AsyncGenerator[tuple[str, Obj], None] = self.registry.watch(target.rt, opts)
        # Errors (410 Expired) travel as ERROR events inside the 200 stream, as upstream sends them.
        await response.prepare(request)
        last_rv = opts.resource_version or "0"
        sent_columns = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout) if timeout else None

        async def send(kind: str, obj: Obj) -> None:
            nonlocal sent_columns, last_rv
            obj["apiVersion"], obj["kind"] = target.rt.api_version, target.rt.kind
            last_rv = obj["metadata"].get("resourceVersion", last_rv)
            if table:
                body: Obj = printers.to_table(target.rt, [obj], include_object=request.query.get(
                    "includeObject", "Metadata"))
                if sent_columns:
                    body["columnDefinitions"] = []
                sent_columns = True
                body["metadata"] = {"resourceVersion": last_rv}
                obj = body
            try:
                line = dumps({"type": kind, "object": obj}) + b"\n"
            except orjson.JSONEncodeError as exc:
                # An object stored before depth was bounded: skip its event rather than break the stream.
                log.error("left a %s event for %s out of a watch: it cannot be encoded (%s)", kind,
                          target.rt.plural, exc)
                return
            await response.write(line)

        next_event: asyncio.Future[tuple[str, Obj]] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(events.__anext__())
                wait = BOOKMARK_INTERVAL
                if deadline is not None:
                    wait = min(wait, max(deadline - loop.time(), 0))
                done, _ = await asyncio.wait({next_event}, timeout=wait)
                if next_event in done:
                    try:
                        kind, obj = next_event.result()
                    except StopAsyncIteration:
                        next_event = None
                        break
                    next_event = None
                    await send(kind, obj)
                    continue
                if deadline is not None and loop.time() >= deadline:
                    break
                if bookmarks:
                    await response.write(dumps({"type": "BOOKMARK", "object": {
                        "kind": target.rt.kind, "apiVersion": target.rt.api_version,
                        "metadata": {"resourceVersion": last_rv}}}) + b"\n")
        except errors.StatusError as exc:
            next_event = None
            await response.write(dumps({"type": "ERROR", "object": exc.to_status()}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception as exc:  # a bug of ours: the 200 stream has started, so it ends with an ERROR event
            log.exception("watch of %s failed", target.rt.plural)
            next_event = None
            with contextlib.suppress(ConnectionResetError):
                await response.write(dumps({"type": "ERROR", "object": errors.internal_error(
                    f"an error on the server ({type(exc).__name__}) has prevented the request from succeeding")
                    .to_status()}) + b"\n")
        finally:
            if next_event is not None:
                next_event.cancel()
                await asyncio.gather(next_event, return_exceptions=True)
            await events.aclose()
        return response

    # -- writes ------------------------------------------------------------------------

    async def _body_object(self, request: web.Request, target: Target) -> Obj:
        body, ctype = await read_body(request)
        obj = await decode_request_object(request, body, ctype, target.rt.kind)
        expected = (target.rt.api_version, target.rt.kind)
        if target.subresource == "status" or target.subresource is None or target.subresource == "finalize":
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            if (api_version or kind) and (api_version, kind) != expected:
                raise errors.bad_request(f"the API version in the data ({api_version}) does not match the "
                                         f"expected API version ({target.rt.api_version})"
                                         if api_version != expected[0] else
                                         f"Object 'Kind' is {kind!r}, expected {target.rt.kind!r}")
        self._field_validation(request, target, obj)
        return obj

    def _field_validation(self, request: web.Request, target: Target, obj: Obj) -> None:
        """Type errors are refused; unknown fields are refused under Strict and removed otherwise (with a
        warning each under Warn), as upstream's decoder never keeps them; duplicate keys likewise."""
        schema.reject_type_errors(target.rt, obj)
        mode = request.query.get("fieldValidation", "")
        duplicates = request.get(DUPLICATES_KEY) or []
        if mode == "Strict":
            unknown = schema.unknown_fields(target.rt, obj)
            if duplicates or unknown:
                rt = target.rt
                raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                                         "strict decoding error: " + ", ".join(
                                             [*duplicates, *(f'unknown field "{f}"' for f in unknown)]))
        removed = prune_unknown(target.rt, obj)
        if mode == "Warn" and (removed or duplicates):
            request[WARNINGS_KEY] = [*duplicates, *(f'unknown field "{f}"' for f in removed)]

    def _check_name(self, target: Target, obj: Obj) -> None:
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        if target.namespace and md.get("namespace") and md["namespace"] != target.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        if target.name and md.get("name") and md["name"] != target.name:
            raise errors.bad_request(f"the name of the object ({md['name']}) does not match the name on the "
                                     f"URL ({target.name})")
        if target.name:
            md["name"] = target.name

    @staticmethod
    def _check_applied(target: Target, applied: Obj) -> None:
        """An apply body names the kind and version of the URL (upstream's version check manager) and, if it
        names the object, the object of the URL."""
        api_version, kind = applied.get("apiVersion"), applied.get("kind")
        if (api_version, kind) != (target.rt.api_version, target.rt.kind):
            text = api_version if isinstance(api_version, str) else ""
            group, _, version = text.rpartition("/")
            shown_kind = kind if isinstance(kind, str) else ""
            raise errors.bad_request(f"invalid object type: {group}/{version}, Kind={shown_kind}")
        md = applied.get("metadata")
        if isinstance(md, dict) and md.get("name") not in (None, target.name):
            raise errors.bad_request(f"the name of the object ({md['name']}) does not match the name on the URL "
                                     f"({target.name})")

    @staticmethod
    def _check_patched_identity(target: Target, result: Obj, uid: str | None) -> None:
        """A patch may not rename an object, move it to another namespace or change its uid (upstream's
        checkName: 400; metadata.uid: 422 field is immutable). A uid the patch removed is kept."""
        md = result.get("metadata")
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        if md.get("name") != target.name:
            raise errors.bad_request(f"the name of the object ({md.get('name') or ''}) does not match the name on "
                                     f"the URL ({target.name})")
        if target.namespace and md.get("namespace") and md["namespace"] != target.namespace:
            raise errors.bad_request(f"the namespace of the object ({md['namespace']}) does not match the "
                                     f"namespace on the request ({target.namespace})")
        if not md.get("uid"):
            md["uid"] = uid
        elif uid and md["uid"] != uid:
            raise errors.invalid(target.rt.kind, target.name or "", [errors.FieldCause(
                "metadata.uid", f"Invalid value: {options.go_quote(str(md['uid']))}: field is immutable")],
                target.rt.group)

    def _manager(self, request: web.Request, default: str = "unknown") -> str:
        return request.query.get("fieldManager") or request.headers.get("User-Agent", default).split("/")[0]

    def _headers(self, request: web.Request) -> dict[str, str] | None:
        warnings = request.get(WARNINGS_KEY)
        return {"Warning": ", ".join(f"299 - {orjson.dumps(w).decode()}" for w in warnings)} if warnings else None

    async def create(self, request: web.Request, target: Target) -> web.Response:
        obj = await self._body_object(request, target)
        self._check_name(target, obj)
        patch.record_update_manager(obj, self._manager(request), "Update", target.rt.api_version,
                                    meta.now_rfc3339())
        created = await self.registry.create(target.rt, target.namespace, obj, dry_run=_dry_run(request))
        return json_response(created, 201, self._headers(request))

    async def review(self, request: web.Request, target: Target) -> web.Response:
        """A TokenReview, SelfSubjectReview or access/rules review: answered, never stored."""
        obj = await self._body_object(request, target)
        self._check_name(target, obj)
        return json_response(await self.reviews.answer(target.rt, target.namespace, obj, request[USER_KEY]), 201,
                             self._headers(request))

    async def update(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        obj = await self._body_object(request, target)
        self._check_name(target, obj)
        namespace = self._namespace(target)
        dry_run = _dry_run(request)
        created = False

        async def create_instead() -> Obj:
            nonlocal created
            created = True
            return await self.registry.create(target.rt, namespace, obj, dry_run=dry_run)

        if target.subresource is None:
            patch.record_update_manager(obj, self._manager(request), "Update", target.rt.api_version,
                                        meta.now_rfc3339())
        result = await self.registry.update(target.rt, namespace, target.name, obj, subresource=target.subresource,
                                            dry_run=dry_run, on_missing=create_instead
                                            if target.subresource is None and target.rt.kind in
                                            CREATE_ON_UPDATE else None)
        return json_response(result, 201 if created else 200, self._headers(request))

    async def patch(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        body, ctype = await read_body(request)
        if ctype not in patch.PATCH_TYPES:
            raise errors.unsupported_media_type(ctype)
        namespace = self._namespace(target)
        dry_run = _dry_run(request)
        manager = self._manager(request)
        now = meta.now_rfc3339()
        mode = request.query.get("fieldValidation", "")
        if ctype == patch.APPLY_PATCH:
            if not request.query.get("fieldManager"):
                raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
            try:
                decoded = await decoding.off_loop(len(body), decoding.decode_yaml, body)
            except decoding.DecodeError as exc:
                raise errors.bad_request(f"error decoding YAML: error converting YAML to JSON: {exc.detail}") from None
            applied = decoded.value if isinstance(decoded.value, dict) else {}
            self._check_applied(target, applied)
            if decoded.duplicates and mode == "Strict":
                raise errors.bad_request("error strict decoding YAML: error converting YAML to JSON: "
                                         + decoded.duplicates[0])
            if decoded.duplicates and mode == "Warn":
                request[DUPLICATES_KEY] = decoded.duplicates
            force = _bool(request, "force")
            self._field_validation(request, target, applied)
            try:
                await self.registry.get(target.rt, namespace, target.name)
            except errors.StatusError as exc:
                if exc.code != 404 or target.subresource:
                    raise
                obj = await decoding.off_loop(len(body), patch.server_side_apply, None, applied, manager, force, now)
                self._check_name(target, obj)
                return json_response(await self.registry.create(target.rt, namespace, obj, dry_run=dry_run), 201,
                                     self._headers(request))

            async def apply(current: Obj) -> Obj:
                result = await decoding.off_loop(len(body), patch.server_side_apply, current, applied, manager,
                                                 force, now)
                result["metadata"].pop("resourceVersion", None)
                result["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                return result

            return json_response(await self.registry.guaranteed_update(
                target.rt, namespace, target.name, apply, subresource=target.subresource, dry_run=dry_run), 200,
                self._headers(request))

        try:  # depth and (when asked for) duplicate keys of the patch itself; apply_patch decodes it again
            decoded = await decoding.off_loop(len(body), decoding.decode_json, body, mode in ("Strict", "Warn"))
        except decoding.DecodeError as exc:
            raise errors.bad_request(f"error decoding patch: {exc.detail}") from None
        if decoded.duplicates:
            request[DUPLICATES_KEY] = decoded.duplicates

        async def mutate(current: Obj) -> Obj:
            rv = current["metadata"].get("resourceVersion")
            uid = current["metadata"].get("uid")
            result = await decoding.off_loop(len(body), patch.apply_patch, current, body, ctype)
            self._check_patched_identity(target, result, uid)
            self._field_validation(request, target, result)
            md = result.setdefault("metadata", {})
            if md.get("resourceVersion") == rv:
                md.pop("resourceVersion")  # not a precondition unless the patch set it
            if target.subresource is None:
                patch.record_update_manager(result, manager, "Update", target.rt.api_version, now)
            return result

        result = await self.registry.guaranteed_update(target.rt, namespace, target.name, mutate,
                                                       subresource=target.subresource, dry_run=dry_run)
        return json_response(result, 200, self._headers(request))

    async def _delete_options(self, request: web.Request) -> Obj:
        body, ctype = await read_body(request)
        found: Obj = decode_object(body, ctype, "DeleteOptions") if body.strip() else {}
        if "gracePeriodSeconds" in request.query:
            found["gracePeriodSeconds"] = options.parse_int64("gracePeriodSeconds", request.query["gracePeriodSeconds"])
        if "propagationPolicy" in request.query:
            found["propagationPolicy"] = request.query["propagationPolicy"]
        if found.get("propagationPolicy") not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{found["propagationPolicy"]}": '
                                     'supported values: "Foreground", "Background", "Orphan"')
        return found

    async def delete(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        options = await self._delete_options(request)
        obj, removed = await self.registry.delete(target.rt, self._namespace(target), target.name, options,
                                                  dry_run=_dry_run(request))
        obj["apiVersion"], obj["kind"] = target.rt.api_version, target.rt.kind
        if removed and target.rt is not PODS and target.rt.kind not in ("Namespace",):
            details = {"name": target.name, "kind": target.rt.plural, "uid": obj["metadata"].get("uid")}
            if target.rt.group:
                details["group"] = target.rt.group
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": details})
        return json_response(obj)

    async def delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        opts = self._list_options(request, target)
        listed = await self.registry.list(target.rt, opts)
        dry_run = _dry_run(request)
        items = []
        for obj in listed["items"]:
            md = obj["metadata"]
            try:
                deleted, _ = await self.registry.delete(target.rt, md.get("namespace"), md["name"], options,
                                                        dry_run=dry_run)
                items.append(deleted)
            except errors.StatusError as exc:
                if exc.code != 404:
                    raise
        return json_response({**listed, "items": items})

    # -- subresources ------------------------------------------------------------------

    async def scale(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        namespace = self._namespace(target)
        if request.method == "GET":
            return json_response(self._to_scale(target, await self.registry.get(target.rt, namespace, target.name)))
        body, ctype = await read_body(request)
        if request.method == "PUT":
            scale = decode_object(body, ctype)
        elif request.method == "PATCH":
            current = self._to_scale(target, await self.registry.get(target.rt, namespace, target.name))
            scale = patch.apply_patch(current, body, ctype)
        else:
            raise errors.method_not_supported(f"{target.rt.plural}/scale", request.method)
        for field, go_type in (("spec", "v1.ScaleSpec"), ("metadata", "v1.ObjectMeta")):
            value = scale.get(field)
            if value is not None and not isinstance(value, dict):
                raise errors.bad_request(
                    'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
                    f"{_go_json_type(value)} into Go struct field Scale.{field} of type {go_type}")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", target.name, [errors.FieldCause(
                "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")],
                "autoscaling")
        precondition = (scale.get("metadata") or {}).get("resourceVersion")

        async def set_replicas(obj: Obj) -> Obj:
            if precondition:
                obj["metadata"]["resourceVersion"] = precondition
            else:
                obj["metadata"].pop("resourceVersion", None)
            obj.setdefault("spec", {})["replicas"] = replicas
            return obj

        updated = await self.registry.guaranteed_update(target.rt, namespace, target.name, set_replicas,
                                                        dry_run=_dry_run(request))
        return json_response(self._to_scale(target, updated))

    @staticmethod
    def _to_scale(target: Target, obj: Obj) -> Obj:
        from controlplane.api.selectors import selector_to_string

        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        selector = spec.get("selector")
        if target.rt.kind == "ReplicationController":
            selector_text = ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))
        else:
            selector_text = selector_to_string(selector)
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: obj["metadata"].get(k) for k in ("name", "namespace", "uid", "resourceVersion",
                                                                 "creationTimestamp")},
                "spec": {"replicas": int(spec.get("replicas", 0))},
                "status": {"replicas": int(status.get("replicas", 0)), "selector": selector_text}}

    async def bind(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        binding = decode_object(*(await read_body(request)))
        node = ((binding.get("target") or {}).get("name")) or ""
        if not node:
            raise errors.invalid("Binding", target.name, [errors.FieldCause("target.name", "Required value",
                                                                            "FieldValueRequired")])

        async def assign(pod: Obj) -> Obj:
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods", target.name or "", "pod is being deleted, cannot be assigned to a host")
            if (pod.get("spec") or {}).get("nodeName"):
                raise errors.conflict("pods/binding", target.name or "",
                                      f"pod {target.name} is already assigned to node "
                                      f'"{pod["spec"]["nodeName"]}"')
            pod["spec"]["nodeName"] = node
            pod["metadata"].pop("resourceVersion", None)
            conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") !=
                          "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": meta.now_rfc3339()})
            pod.setdefault("status", {})["conditions"] = conditions
            return pod

        # Binding writes spec.nodeName and the PodScheduled condition at once, as upstream.
        await self.registry.guaranteed_update(PODS, target.namespace, target.name, assign, subresource="binding")
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, 201)

    async def evict(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        eviction = decode_object(*(await read_body(request)))
        options = eviction.get("deleteOptions") or {}
        await self.registry.delete(PODS, target.namespace, target.name, options, dry_run=_dry_run(request))
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, 201)

    async def _pod_and_node(self, target: Target) -> tuple[dict[str, Any], dict[str, Any], KubeletClient]:
        assert target.name is not None
        pod = await self.registry.get(PODS, self._namespace(target), target.name)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise errors.bad_request(f"pod {target.name} does not have a host assigned")
        if self.kubelets is None:
            raise errors.StatusError(503, "ServiceUnavailable", "this API server has no kubelet client")
        node = await self.registry.get(resources.NODES, None, node_name)
        return pod, node, self.kubelets

    async def pod_log(self, request: web.Request, target: Target) -> web.StreamResponse:
        """pods/log: answered by the kubelet of the pod's node."""
        pod, node, kubelets = await self._pod_and_node(target)
        return await kubelets.stream_logs(request, pod, node)

    async def pod_stream(self, request: web.Request, target: Target) -> web.StreamResponse:
        """pods/exec, pods/attach, pods/portforward: an upgraded connection spliced through to the kubelet."""
        pod, node, kubelets = await self._pod_and_node(target)
        if target.subresource != "portforward" and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot exec into a container in a completed pod; current phase is "
                                     f"{pod['status']['phase']}")
        return await kubelets.stream(request, str(target.subresource), pod, node)

    async def token_request(self, request: web.Request, target: Target) -> web.Response:
        """serviceaccounts/<name>/token: a TokenRequest answered with a signed, expiring token."""
        assert target.name is not None
        body = decode_object(*(await read_body(request)))
        account = await self.registry.get(resources.SERVICEACCOUNTS, target.namespace, target.name)
        spec = body.get("spec") or {}
        seconds = spec.get("expirationSeconds") or DEFAULT_EXPIRATION
        if not isinstance(seconds, int) or seconds < 600:
            raise errors.invalid("TokenRequest", target.name, [errors.FieldCause(
                "spec.expirationSeconds", f"Invalid value: {seconds!r}: may not specify a duration less than 10 "
                "minutes")], "authentication.k8s.io")
        bound = spec.get("boundObjectRef") or None
        pod = {"name": bound["name"], "uid": bound.get("uid", "")} if bound and bound.get("kind") == "Pod" else None
        token, expires = self.tokens.issue(target.namespace or "", target.name, account["metadata"]["uid"],
                                           audiences=spec.get("audiences"), expiration_seconds=seconds,
                                           bound_pod=pod)
        return json_response({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": target.name, "namespace": target.namespace,
                         "creationTimestamp": meta.now_rfc3339()},
            "spec": {**spec, "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}, 201)


def _go_json_type(value: object) -> str:
    """The JSON type name Go's decoder reports in `cannot unmarshal <type> into ...`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
