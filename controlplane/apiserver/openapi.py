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


STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
# What upstream's operations answer in (a watch also in its stream forms).
OBJECT_MEDIA = ("application/json", "application/vnd.kubernetes.protobuf", "application/yaml")
LIST_MEDIA = ("application/json", "application/json;stream=watch", "application/vnd.kubernetes.protobuf",
              "application/vnd.kubernetes.protobuf;stream=watch", "application/yaml")
PATCH_MEDIA = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
# Kinds whose DELETE answers with the object rather than a Status (as this server answers; upstream
# also returns the object for some other kinds, such as Service).
DELETE_RETURNS_OBJECT = frozenset({"Pod", "Namespace"})

# Query parameters, with upstream's types.
_BOOLEAN = ("allowWatchBookmarks", "force", "orphanDependents", "sendInitialEvents", "watch")
_INTEGER = ("gracePeriodSeconds", "limit", "timeoutSeconds")
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_DELETE = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_DELETE_COLLECTION = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds", "labelSelector", "limit",
                      "orphanDependents", "propagationPolicy", "resourceVersion", "resourceVersionMatch",
                      "sendInitialEvents", "timeoutSeconds")


def _query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": {"type": "boolean" if n in _BOOLEAN else "integer" if n in
                                                  _INTEGER else "string", "uniqueItems": True}}
            for n in names]


def _path_params(rt: ResourceType, item: bool) -> list[dict[str, Any]]:
    """The path item's own parameters, as upstream lists them: name, namespace, pretty."""
    found = []
    if item:
        found.append({"name": "name", "in": "path", "required": True, "description": f"name of the {rt.kind}",
                      "schema": {"type": "string", "uniqueItems": True}})
    if rt.namespaced:
        found.append({"name": "namespace", "in": "path", "required": True, "description": "object name and auth "
                      "scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": True}})
    return [*found, *_query("pretty")]


def _content(name: str, media: tuple[str, ...] = OBJECT_MEDIA) -> dict[str, Any]:
    return {m: {"schema": {"$ref": f"{REF_PREFIX}{name}"}} for m in media}


def _responses(name: str, *codes: str, media: tuple[str, ...] = OBJECT_MEDIA) -> dict[str, Any]:
    words = {"200": "OK", "201": "Created", "202": "Accepted"}
    found: dict[str, Any] = {code: {"description": words[code], "content": _content(name, media)} for code in codes}
    found["401"] = {"description": "Unauthorized"}
    return found


def _op_id(verb: str, rt: ResourceType, suffix: str = "", scope: str = "") -> str:
    """Upstream's operation ids: readCoreV1NamespacedPodStatus, deleteCoreV1CollectionNamespacedPod,
    listAppsV1DeploymentForAllNamespaces (`scope`: "collection" or "all")."""
    group = (rt.group.split(".")[0] if rt.group else "core").capitalize()
    collection = "Collection" if scope == "collection" else ""
    namespaced = "Namespaced" if rt.namespaced and scope != "all" else ""
    tail = "ForAllNamespaces" if scope == "all" else ""
    return f"{verb}{group}{rt.version.capitalize()}{collection}{namespaced}{rt.kind}{suffix}{tail}"


def _tag(rt: ResourceType) -> str:
    return f"{rt.group.split('.')[0] if rt.group else 'core'}_{rt.version}"


def _op(rt: ResourceType, op_id: str, action: str, params: list[dict[str, Any]], responses: dict[str, Any],
        body: str | None = None, body_media: tuple[str, ...] = ("*/*",), body_required: bool = True,
        description: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {
        "description": description, "operationId": op_id, "responses": responses, "tags": [_tag(rt)],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind}}
    if params:
        result["parameters"] = params
    if body is not None:
        result["requestBody"] = {"content": _content(body, body_media)}
        if body_required:
            result["requestBody"]["required"] = True
    return result


def _item_ops(rt: ResourceType, kind_name: str, suffix: str = "", what: str = "") -> dict[str, Any]:
    """get, put and patch of an object or of its status or scale subresource (`suffix`: Status, Scale)."""
    of = f"{what} of " if what else ""
    return {
        "get": _op(rt, _op_id("read", rt, suffix), "get", [], _responses(kind_name, "200"),
                   description=f"read {of}the specified {rt.kind}"),
        "put": _op(rt, _op_id("replace", rt, suffix), "put", _query(*_WRITE), _responses(kind_name, "200", "201"),
                   kind_name, description=f"replace {of}the specified {rt.kind}"),
        "patch": _op(rt, _op_id("patch", rt, suffix), "patch", _query(*_WRITE, "force"),
                     _responses(kind_name, "200", "201"), PATCH, PATCH_MEDIA,
                     description=f"partially update {of}the specified {rt.kind}"),
    }


def _paths(rt: ResourceType) -> dict[str, Any]:
    """The path items of one resource type, in upstream's shape: every path with its parameters, every
    operation with its query parameters, request body and responses."""
    name = _schema_name(rt)
    collection = rt.path("{namespace}" if rt.namespaced else None)
    create = _op(rt, _op_id("create", rt), "post", _query(*_WRITE), _responses(name, "200", "201", "202"), name,
                 description=f"create a {rt.kind}")
    if not rt.stored:  # a review: POST only
        return {collection: {"parameters": _path_params(rt, False), "post": create}}
    list_name = list_definition_name(rt)
    paths: dict[str, Any] = {collection: {
        "parameters": _path_params(rt, False),
        "get": _op(rt, _op_id("list", rt), "list", _query(*_LIST), _responses(list_name, "200", media=LIST_MEDIA),
                   description=f"list or watch objects of kind {rt.kind}"),
        "post": create,
        "delete": _op(rt, _op_id("delete", rt, scope="collection"), "deletecollection", _query(*_DELETE_COLLECTION), _responses(STATUS, "200"), DELETE_OPTIONS,
                      body_required=False, description=f"delete collection of {rt.kind}"),
    }}
    deleted = name if rt.kind in DELETE_RETURNS_OBJECT else STATUS
    paths[rt.path("{namespace}" if rt.namespaced else None, "{name}")] = {
        "parameters": _path_params(rt, True), **_item_ops(rt, name),
        "delete": _op(rt, _op_id("delete", rt), "delete", _query(*_DELETE), _responses(deleted, "200", "202"),
                      DELETE_OPTIONS, body_required=False, description=f"delete a {rt.kind}")}
    if "status" in rt.subresources:
        paths[rt.path("{namespace}" if rt.namespaced else None, "{name}", "status")] = {
            "parameters": _path_params(rt, True), **_item_ops(rt, name, "Status", "status")}
    if "scale" in rt.subresources:
        paths[rt.path("{namespace}" if rt.namespaced else None, "{name}", "scale")] = {
            "parameters": _path_params(rt, True), **_item_ops(rt, SCALE, "Scale", "scale")}
    if rt.namespaced:
        paths[rt.path(None)] = {
            "parameters": _query(*_LIST, "pretty"),
            "get": _op(rt, _op_id("list", rt, scope="all"), "list", [],
                       _responses(list_name, "200", media=LIST_MEDIA),
                       description=f"list or watch objects of kind {rt.kind}")}
    return paths


@functools.cache
def document(group: str, version: str) -> bytes:
    resources = [r for r in RESOURCES if r.group == group and r.version == version]
    paths: dict[str, Any] = {}
    for rt in resources:
        paths.update(_paths(rt))
    roots = [STATUS, DELETE_OPTIONS, PATCH]
    if any("scale" in rt.subresources for rt in resources):
        roots.append(SCALE)
    schemas = _referenced([*roots, *(name for rt in resources
                                     for name in ((_schema_name(rt), list_definition_name(rt)) if rt.stored
                                                  else (_schema_name(rt),)))])
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
