"""OpenAPI v3 documents: what kubectl reads to choose server-side field validation.

kubectl looks up the PATCH operation tagged with the object's
`x-kubernetes-group-version-kind` and, when it accepts the `fieldValidation`
parameter, leaves validation to the server (`fieldValidation=Strict`);
`kubectl explain` reads `components.schemas`. The schemas are the project's
per-kind definitions (`controlplane/api/schema/types.py`, the same ones that
drive the server's unknown-field and type checks): every document carries its
group-version's kinds, their list kinds and every definition they reference,
under upstream's names. `/openapi/v2` is served as an empty protobuf document:
a JSON v2 body breaks kubectl's validation (DESIGN.md §4), and kubectl 1.27/1.28
need some v2 answer before `apply`.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from controlplane.api.resources import RESOURCES, ResourceType, group_versions
from controlplane.api.schema.build import REF_PREFIX
from controlplane.api.schema.types import definition_name, definitions, list_definition_name


def _doc_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema_name(rt: ResourceType) -> str:
    return definition_name(rt)


def _referenced(roots: list[str]) -> dict[str, Any]:
    """The named definitions `roots` need, following `$ref`s transitively, sorted by name."""
    table = definitions()
    found: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = table[name]
        stack: list[Any] = [table[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                target = node.get("$ref")
                if isinstance(target, str) and target.startswith(REF_PREFIX):
                    pending.append(target[len(REF_PREFIX):])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return dict(sorted(found.items()))


def _params() -> list[dict[str, Any]]:
    names = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
    return [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True} for n in names]


def _operations(rt: ResourceType) -> dict[str, Any]:
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
    body = {"content": {"application/json": {"schema": ref}}}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}

    def op(verb: str, action: str, with_body: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {"operationId": f"{verb}{rt.kind}", "responses": ok,
                                  "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                                  "parameters": _params()}
        if with_body:
            result["requestBody"] = body
        return result

    return {"get": op("read", "get"), "put": op("replace", "put", True), "patch": op("patch", "patch", True),
            "delete": op("delete", "delete")}


@functools.cache
def document(group: str, version: str) -> bytes:
    resources = [r for r in RESOURCES if r.group == group and r.version == version]
    paths: dict[str, Any] = {}
    for rt in resources:
        item_path = rt.path("{namespace}" if rt.namespaced else None, "{name}")
        collection = rt.path("{namespace}" if rt.namespaced else None)
        ops = _operations(rt)
        paths[collection] = {"post": {**ops["put"], "operationId": f"create{rt.kind}", "x-kubernetes-action":
                                      "post"}}
        if not rt.stored:
            continue  # a review: POST only
        paths[item_path] = ops
        list_ref = {"$ref": f"#/components/schemas/{list_definition_name(rt)}"}
        paths[collection]["get"] = {
            "operationId": f"list{rt.kind}", "x-kubernetes-action": "list", "parameters": _params(),
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": list_ref}}}}}
    schemas = _referenced([name for rt in resources
                           for name in ((_schema_name(rt), list_definition_name(rt)) if rt.stored
                                        else (_schema_name(rt),))])
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.31.0-pyk8s"}, "paths": paths,
           "components": {"schemas": schemas}}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@functools.cache
def index() -> bytes:
    paths = {}
    for group, version in group_versions():
        digest = hashlib.sha512(document(group, version)).hexdigest()[:32].upper()
        path = _doc_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return orjson.dumps({"paths": paths})


def lookup(path: str) -> bytes | None:
    parts = [p for p in path.split("/") if p]
    for group, version in group_versions():
        if parts == _doc_path(group, version).split("/"):
            return document(group, version)
    return None


def v2_protobuf() -> bytes:
    """An empty OpenAPI v2 `Document` in protobuf (gnostic's wire format): zero bytes.

    kubectl 1.27/1.28 fetch this before `apply`; with no definitions in it they fall
    back to their compiled-in knowledge of the built-in kinds for patch computation.
    """
    return b""
