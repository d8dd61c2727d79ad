"""Remove the fields a built-in kind's schema does not know, as upstream's decoder drops them.

Why this module exists: upstream decodes a body into Go structs, so a field the
struct lacks is never stored — with `fieldValidation=Ignore` silently, with
`Warn` with one `unknown field "spec.foo"` warning each, and with `Strict` the
request is refused. pyk8s keeps objects as dicts, so without this every
unknown field a client sent was stored. The walk reads the compiled schema of
`controlplane.api.schema.check` (the same one the strict check and the type
check use) and never changes it; the paths it reports are the strict check's.
"""

from __future__ import annotations

from typing import Any

from controlplane.api.resources import ResourceType
from controlplane.api.schema.check import _root as compiled_schema
from controlplane.api.schema.types import definition_name, definitions


def _prune(node: Any, value: Any, path: str, removed: list[str]) -> None:
    if node.shape == "object" and isinstance(value, dict):
        for key in list(value):
            child = node.props.get(key)
            here = f"{path}.{key}" if path else key
            if child is None:
                removed.append(here)
                del value[key]
            elif child.shape and value[key] is not None:
                _prune(child, value[key], here, removed)
    elif node.shape == "array" and isinstance(value, list) and node.child is not None and node.child.shape:
        for index, item in enumerate(value):
            _prune(node.child, item, f"{path}[{index}]", removed)
    elif node.shape == "map" and isinstance(value, dict) and node.child is not None and node.child.shape:
        for key, item in value.items():
            _prune(node.child, item, f"{path}[{key}]", removed)


def prune_unknown(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Delete every field of `obj` its kind's schema does not know, at any depth, in place; returns their
    paths in upstream's strict-decoding form (`spec.containers[0].imagee`), in document order."""
    name = definition_name(rt)
    removed: list[str] = []
    if name in definitions():
        _prune(compiled_schema(name), obj, "", removed)
    return removed
