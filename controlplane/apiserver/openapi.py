"""OpenAPI v3 documents: what kubectl reads to choose server-side field validation.

kubectl looks up the PATCH operation tagged with the object's
`x-kubernetes-group-version-kind` and, when it accepts the `fieldValidation`
parameter, leaves validation to the server (`fieldValidation=Strict`). The
object schemas here are open (`x-kubernetes-preserve-unknown-fields`) until
the per-kind schemas land. `/openapi/v2` is served as an empty protobuf document:
a JSON v2 body breaks kubectl's validation (DESIGN.md §4), and kubectl 1.27/1.28
need some v2 answer before `apply`.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from controlplane.api.resources import RESOURCES, ResourceType, group_versions


def _doc_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema_name(rt: ResourceType) -> str:
    group = rt.group.split(".")[0] if rt.group else "core"
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


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
    schemas: dict[str, Any] = {}
    for rt in resources:
        item_path = rt.path("{namespace}" if rt.namespaced else None, "{name}")
        collection = rt.path("{namespace}" if rt.namespaced else None)
        ops = _operations(rt)
        paths[item_path] = ops
        paths[collection] = {"post": {**ops["put"], "operationId": f"create{rt.kind}", "x-kubernetes-action":
                                      "post"}}
        schemas[_schema_name(rt)] = {
            "type": "object", "description": f"{rt.kind} ({rt.api_version})",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": rt.kind}],
            "properties": {
                "apiVersion": {"type": "string", "description": "The versioned schema of this object."},
                "kind": {"type": "string", "description": "The type of this object."},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                             "description": "Standard object metadata: name, namespace, labels, annotations."},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "description": f"The desired state of the {rt.kind}."},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                           "description": f"The observed state of the {rt.kind}."},
            },
        }
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
