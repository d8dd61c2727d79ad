"""Field names and JSON types of the kind schemas agree with upstream's, as the official client knows them.

The official Python client is generated from upstream's OpenAPI; its models
(`attribute_map`, `openapi_types`) are an independent record of the field
names and types. The project's schemas may leave newer fields out, but must
never invent a name or change a type.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api.schema.types import definitions

client = pytest.importorskip("kubernetes.client")

# Definitions whose client model name is not simply V1<Name>.
_MODEL_NAMES = {
    "io.k8s.api.core.v1.Event": "CoreV1Event", "io.k8s.api.core.v1.EventSeries": "CoreV1EventSeries",
    "io.k8s.api.core.v1.EndpointPort": "CoreV1EndpointPort", "io.k8s.api.core.v1.ResourceClaim": "CoreV1ResourceClaim",
    "io.k8s.api.discovery.v1.EndpointPort": "DiscoveryV1EndpointPort",
}


def _ours(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        short = schema["$ref"].rsplit(".", 1)[-1]
        return {"Time": "datetime", "MicroTime": "datetime", "Quantity": "str", "IntOrString": "object",
                "RawExtension": "object"}.get(short, "model")
    if "allOf" in schema:
        return _ours(schema["allOf"][0])
    kind = schema.get("type")
    if kind == "array":
        return f"List[{_ours(schema['items'])}]"
    if kind == "object" and "additionalProperties" in schema:
        value = _ours(schema["additionalProperties"])
        return f"Dict[str, {'bytearray' if schema['additionalProperties'].get('format') == 'byte' else value}]"
    return {"string": "str", "integer": "int", "boolean": "bool", "number": "float", "object": "object"}[str(kind)]


def _theirs(type_name: str) -> str:
    if type_name.startswith("List["):
        return f"List[{_theirs(type_name[5:-1])}]"
    if type_name.startswith("Dict[str, "):
        return f"Dict[str, {_theirs(type_name[10:-1])}]"
    if type_name in ("bytes", "bytearray"):
        return "bytearray"
    return type_name if type_name in ("str", "int", "bool", "float", "object", "datetime") else "model"


def test_no_invented_field_names_or_types() -> None:
    checked = 0
    for name, schema in definitions().items():
        if "properties" not in schema or name.endswith("List"):
            continue
        model = getattr(client, _MODEL_NAMES.get(name, "V1" + name.rsplit(".", 1)[-1]), None)
        if model is None:
            continue
        theirs = {model.attribute_map[attr]: _theirs(kind) for attr, kind in model.openapi_types.items()}
        for field, prop in schema["properties"].items():
            assert field in theirs, f"{name}.{field} is not an upstream field"
            ours = _ours(prop)
            assert ours == theirs[field], f"{name}.{field}: {ours} != {theirs[field]}"
        checked += 1
    assert checked > 200
