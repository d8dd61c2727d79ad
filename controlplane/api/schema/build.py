"""Small constructors for OpenAPI v3 structural schemas.

The kind schemas in `types.py` are written with these helpers so that each
field reads as one short line (name, type, description) and the upstream list
and patch annotations are spelled once, here, instead of by hand at every
field. The results are plain JSON-ready dicts: the same objects are served in
the OpenAPI documents and walked by the unknown-field and type checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Schema = dict[str, Any]

REF_PREFIX = "#/components/schemas/"

CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
BATCH = "io.k8s.api.batch.v1."
DISCOVERY = "io.k8s.api.discovery.v1."
COORDINATION = "io.k8s.api.coordination.v1."
AUTHENTICATION = "io.k8s.api.authentication.v1."
AUTHORIZATION = "io.k8s.api.authorization.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"


def obj(description: str, properties: Mapping[str, Schema], required: Iterable[str] = (), *,
        atomic: bool = False, gvk: tuple[str, str, str] | None = None) -> Schema:
    """An object with known fields; `atomic` marks upstream's `+structType=atomic`."""
    schema: Schema = {"type": "object", "description": description, "properties": dict(properties)}
    req = list(required)
    if req:
        schema["required"] = req
    if atomic:
        schema["x-kubernetes-map-type"] = "atomic"
    if gvk is not None:
        group, version, kind = gvk
        schema["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    return schema


def open_object(description: str) -> Schema:
    """An object whose content is not described (upstream RawExtension and fieldsV1 places)."""
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def string(description: str = "", *, enum: Iterable[str] = (), fmt: str = "", default: str | None = None
           ) -> Schema:
    schema: Schema = {"type": "string"}
    if description:
        schema["description"] = description
    values = sorted(enum)
    if values:
        schema["enum"] = values
    if fmt:
        schema["format"] = fmt
    if default is not None:
        schema["default"] = default
    return schema


def integer(description: str = "", fmt: str = "int32", default: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "format": fmt}
    if description:
        schema["description"] = description
    if default is not None:
        schema["default"] = default
    return schema


def number(description: str = "") -> Schema:
    schema: Schema = {"type": "number", "format": "double"}
    if description:
        schema["description"] = description
    return schema


def boolean(description: str = "", default: bool | None = None) -> Schema:
    schema: Schema = {"type": "boolean"}
    if description:
        schema["description"] = description
    if default is not None:
        schema["default"] = default
    return schema


def map_of(value: Schema, description: str = "") -> Schema:
    schema: Schema = {"type": "object", "additionalProperties": value}
    if description:
        schema["description"] = description
    return schema


def string_map(description: str = "") -> Schema:
    """`map[string]string`: labels, annotations, selectors, ConfigMap data."""
    return map_of({"type": "string", "default": ""}, description)


def ref(name: str, description: str = "", default: Any = None) -> Schema:
    """A reference to a named definition; wrapped in `allOf` when it has siblings, as upstream does."""
    target = {"$ref": REF_PREFIX + name}
    if not description and default is None:
        return target
    schema: Schema = {"allOf": [target]}
    if description:
        schema["description"] = description
    if default is not None:
        schema["default"] = default
    return schema


def quantity(description: str = "") -> Schema:
    return ref(QUANTITY, description)


def quantity_map(description: str = "") -> Schema:
    """`map[ResourceName]Quantity`: resource requests, limits, capacity."""
    return map_of(ref(QUANTITY), description)


def int_or_string(description: str = "") -> Schema:
    return ref(INT_OR_STRING, description)


def time(description: str = "") -> Schema:
    return ref(META + "Time", description)


def arr(items: Schema, description: str = "", *, keys: Iterable[str] = (), list_type: str = "",
        merge_key: str = "", strategy: str = "") -> Schema:
    """A list. `keys` makes it upstream's `listType=map`; `merge_key` adds the strategic-merge key."""
    schema: Schema = {"type": "array", "items": items}
    if description:
        schema["description"] = description
    map_keys = list(keys)
    if map_keys:
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = map_keys
    elif list_type:
        schema["x-kubernetes-list-type"] = list_type
    if merge_key:
        schema["x-kubernetes-patch-merge-key"] = merge_key
        schema["x-kubernetes-patch-strategy"] = strategy or "merge"
    elif strategy:
        schema["x-kubernetes-patch-strategy"] = strategy
    return schema


def strings(description: str = "", *, list_type: str = "atomic", strategy: str = "") -> Schema:
    """`[]string`, atomic unless told otherwise."""
    return arr(string(default=""), description, list_type=list_type, strategy=strategy)


def refs(name: str, description: str = "", **kw: Any) -> Schema:
    """A list of one named definition."""
    return arr(ref(name, default={}), description, **kw)
