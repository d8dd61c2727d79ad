"""Walks an object against its kind's schema: unknown fields and JSON type mismatches.

Upstream finds both while decoding JSON into Go structs: an unknown field is
reported by the strict decoder as `unknown field "spec.containers[0].imagee"`,
a wrong JSON type as `json: cannot unmarshal string into Go struct field
ContainerPort.spec.containers.ports.containerPort of type int32`. pyk8s keeps
objects as dicts, so the same answers come from one walk over the schema in
`types.py`. Maps (labels, annotations, data), int-or-string values and
subtrees marked `x-kubernetes-preserve-unknown-fields` are open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.api.resources import ResourceType
from controlplane.api.schema.build import REF_PREFIX, Schema
from controlplane.api.schema.types import definition_name, definitions


@dataclass
class Findings:
    unknown: list[str] = field(default_factory=list)
    type_errors: list[str] = field(default_factory=list)


def _resolve(schema: Schema) -> tuple[Schema, str]:
    """Follow `$ref` and single-element `allOf`; returns the schema and its definition name ("" if inline)."""
    name = ""
    while True:
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            schema = definitions()[name]
        elif "allOf" in schema and len(schema["allOf"]) == 1 and "properties" not in schema:
            schema = schema["allOf"][0]
        else:
            return schema, name


def _json_kind(value: Any) -> str:
    """The JSON type name Go's decoder prints for a value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_type(schema: Schema) -> str:
    """The Go type upstream's message names for a schema: int32, string, []v1.Container, map[string]string..."""
    resolved, name = _resolve(schema)
    if name:
        package = {"Quantity": "resource", "IntOrString": "intstr", "RawExtension": "runtime"}
        short = name.rsplit(".", 1)[-1]
        return f"{package.get(short, 'v1')}.{short}"
    kind = resolved.get("type")
    if kind == "array":
        return "[]" + _go_type(resolved["items"])
    if kind == "object" and "additionalProperties" in resolved:
        return "map[string]" + _go_type(resolved["additionalProperties"])
    if kind == "integer":
        return str(resolved.get("format") or "int64")
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    if kind == "string":
        return "[]uint8" if resolved.get("format") == "byte" else "string"
    return "interface {}"


def _matches(schema: Schema, value: Any) -> bool:
    """Whether a value has a JSON type the schema accepts (only the top level of the value)."""
    if "oneOf" in schema:
        return any(_matches(option, value) for option in schema["oneOf"])
    kind = schema.get("type")
    if kind is None:
        return True
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return not isinstance(value, bool) and (isinstance(value, int) or
                                                (isinstance(value, float) and value.is_integer()))
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


class _Walker:
    def __init__(self) -> None:
        self.found = Findings()

    def walk(self, schema: Schema, value: Any, path: str, go_path: str, struct: str) -> None:
        """`path` is the strict-decoding path (with indexes), `go_path` the dotted JSON path of Go's errors,
        `struct` the Go struct that holds the current field."""
        if value is None:
            return  # JSON null decodes to the zero value everywhere
        resolved, name = _resolve(schema)
        if not _matches(resolved, value):
            shown = _json_kind(value)
            if shown == "number" and resolved.get("type") == "integer":
                shown = f"number {value}"
            where = f"Go struct field {struct}.{go_path}" if struct and go_path else "Go value"
            self.found.type_errors.append(f"json: cannot unmarshal {shown} into {where} of type "
                                          f"{_go_type(schema)}")
            return
        if resolved.get("x-kubernetes-preserve-unknown-fields"):
            return
        kind = resolved.get("type")
        if kind == "array":
            for i, item in enumerate(value):
                self.walk(resolved["items"], item, f"{path}[{i}]", go_path, struct)
        elif kind == "object" and "additionalProperties" in resolved:
            for key, item in value.items():
                self.walk(resolved["additionalProperties"], item, f"{path}[{key}]", go_path, struct)
        elif kind == "object" and "properties" in resolved:
            props = resolved["properties"]
            holder = name.rsplit(".", 1)[-1] if name else struct
            for key, item in value.items():
                child = f"{path}.{key}" if path else key
                if key not in props:
                    self.found.unknown.append(child)
                    continue
                self.walk(props[key], item, child, f"{go_path}.{key}" if go_path else key, holder)


def check(rt: ResourceType, obj: dict[str, Any]) -> Findings:
    """Unknown fields and type mismatches of a whole object of kind `rt`."""
    walker = _Walker()
    name = definition_name(rt)
    if name in definitions():
        walker.walk({"$ref": REF_PREFIX + name}, obj, "", "", rt.kind)
    return walker.found
