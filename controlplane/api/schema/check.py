"""Walks an object against its kind's schema: unknown fields, JSON type mismatches, defaults.

Upstream finds both while decoding JSON into Go structs: an unknown field is
reported by the strict decoder as `unknown field "spec.containers[0].imagee"`,
a wrong JSON type as `json: cannot unmarshal string into Go struct field
ContainerPort.spec.containers.ports.containerPort of type int32`. pyk8s keeps
objects as dicts, so the same answers come from one walk over the schema in
`types.py`. Maps (labels, annotations, data), int-or-string values and
subtrees marked `x-kubernetes-preserve-unknown-fields` are open.

The same walk fills the schema's `default` values that are not zero values
(probe timings, port protocols, history limits...) into fields left unset;
the conditional defaults stay hand-written in `schema/__init__.py`.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.api.quantity import parse_quantity
from controlplane.api.resources import ResourceType
from controlplane.api.schema.build import QUANTITY, REF_PREFIX, Schema
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


# Upstream's resource.ParseQuantity errors (ErrFormatWrong, ErrSuffix), returned by Quantity's own decoder.
QUANTITY_FORMAT = re.compile(r"[+-]?[0-9.]+[eEinumkKMGTP]*[-+]?[0-9]*")
QUANTITY_FORMAT_ERROR = ("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
QUANTITY_SUFFIX_ERROR = "unable to parse quantity's suffix"


def quantity_error(text: str) -> str:
    """Why upstream's ParseQuantity refuses `text`, or "" when it parses."""
    text = text.strip()
    if not QUANTITY_FORMAT.fullmatch(text):
        return QUANTITY_FORMAT_ERROR
    try:
        parse_quantity(text)
    except (ValueError, ArithmeticError, KeyError):
        return QUANTITY_SUFFIX_ERROR
    return ""


_INT_BOUNDS = {"int32": (-(2 ** 31), 2 ** 31 - 1), "int64": (-(2 ** 63), 2 ** 63 - 1)}
_INT32: Schema = {"type": "integer", "format": "int32"}


def _number_text(value: int | float) -> str:
    """A number as Go's decoder quotes it (the literal text): an integer literal beyond 64 bits that the JSON
    decoder turned into a float is shown as the integer it was."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 2 ** 53:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _matches(schema: Schema, value: Any) -> bool:
    """Whether a value has a JSON type the schema accepts (only the top level of the value)."""
    if schema.get("format") == "int-or-string":
        return isinstance(value, str) or _matches(_INT32, value)
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
        # Go's decoder refuses a fraction (`2.0` too) and a number beyond the field's width.
        low, high = _INT_BOUNDS.get(str(schema.get("format") or ""), _INT_BOUNDS["int64"])
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


class _Node:
    """One schema compiled for walking: resolved refs, precomputed Go type name, children by field."""

    __slots__ = ("child", "defaults", "go_type", "int_or_string", "integer", "no_bool", "open", "props", "quantity",
                 "schema", "shape", "struct", "types")

    def __init__(self, schema: Schema, go_type: str) -> None:
        self.schema = schema
        self.go_type = go_type
        self.shape = ""  # "object", "map", "array" or "" (a scalar or an open value)
        self.props: dict[str, _Node] = {}
        self.defaults: dict[str, Any] = {}  # field -> server-side default (zero-value defaults left out)
        self.child: _Node | None = None
        self.struct = ""
        self.integer = schema.get("type") == "integer"
        self.int_or_string = schema.get("format") == "int-or-string"
        self.quantity = False  # set by _compile for the Quantity definition: its strings are parsed too
        self.open = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        # A fast pre-check: values of these Python types (bool excepted when no_bool) always match. Integers
        # have none: every one is checked against its width.
        self.types, self.no_bool = _python_types(schema)
        if self.integer:
            self.types = ()
        elif self.int_or_string:
            self.types = (str,)

    def accepts(self, value: Any) -> bool:
        if isinstance(value, self.types) and not (self.no_bool and isinstance(value, bool)):
            return True
        return _matches(self.schema, value)


def _python_types(schema: Schema) -> tuple[tuple[type, ...], bool]:
    if "oneOf" in schema:
        found: tuple[type, ...] = ()
        no_bool = False
        for option in schema["oneOf"]:
            types, flag = _python_types(option)
            found += types
            no_bool = no_bool or flag
        return found, no_bool
    return {
        "object": ((dict,), False), "array": ((list,), False), "string": ((str,), False),
        "boolean": ((bool,), False), "integer": ((int,), True), "number": ((int, float), True),
    }.get(schema.get("type") or "", ((object,), False))


def _compile(schema: Schema, memo: dict[str, _Node]) -> _Node:
    resolved, name = _resolve(schema)
    if name and name in memo:
        return memo[name]
    node = _Node(resolved, _go_type(schema))
    if name:
        memo[name] = node  # before the children: a definition may (indirectly) contain itself
        node.struct = name.rsplit(".", 1)[-1]
        if name == QUANTITY:
            node.quantity, node.types = True, ()
    kind = resolved.get("type")
    if node.open:
        return node
    if kind == "array":
        node.shape, node.child = "array", _compile(resolved["items"], memo)
    elif kind == "object" and "additionalProperties" in resolved:
        node.shape, node.child = "map", _compile(resolved["additionalProperties"], memo)
    elif kind == "object" and "properties" in resolved:
        node.shape = "object"
        node.props = {key: _compile(prop, memo) for key, prop in resolved["properties"].items()}
        node.defaults = {key: prop["default"] for key, prop in resolved["properties"].items()
                         if prop.get("default") not in (None, "", 0, False, {}, [])}
    return node


@functools.cache
def _root(definition: str) -> _Node:
    return _compile({"$ref": REF_PREFIX + definition}, {})


def _strict_path(segments: list[str | int]) -> str:
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg.startswith("["):
            out += seg
        else:
            out += f".{seg}" if out else seg
    return out


class _Walker:
    def __init__(self) -> None:
        self.found = Findings()
        self.path: list[str | int] = []  # field names, list indexes and "[key]" map keys

    def walk(self, node: _Node, value: Any, struct: str) -> None:
        """`struct` is the Go struct that holds the current field (named in type errors)."""
        if value is None:
            return  # JSON null decodes to the zero value everywhere
        if not node.accepts(value):
            self._type_error(node, value, struct)
            return
        if node.quantity:
            error = quantity_error(value) if isinstance(value, str) else ""
            if error:
                self.found.type_errors.append(error)
            return
        if node.shape == "object":
            props = node.props
            holder = node.struct or struct
            path = self.path
            for key, item in value.items():
                child = props.get(key)
                if child is not None and not child.shape and isinstance(item, child.types) and \
                        not (child.no_bool and isinstance(item, bool)):
                    continue  # a scalar of the right type: nothing below it to check
                path.append(key)
                if child is None:
                    self.found.unknown.append(_strict_path(path))
                elif item is not None:
                    self.walk(child, item, holder)
                path.pop()
        elif node.shape == "array" or node.shape == "map":
            child = node.child
            assert child is not None
            pairs = enumerate(value) if node.shape == "array" else value.items()
            for key, item in pairs:
                if not child.shape and isinstance(item, child.types) and \
                        not (child.no_bool and isinstance(item, bool)):
                    continue
                self.path.append(key if isinstance(key, int) else f"[{key}]")
                self.walk(child, item, struct)
                self.path.pop()

    def _type_error(self, node: _Node, value: Any, struct: str) -> None:
        shown = _json_kind(value)
        if shown == "number" and (node.integer or node.int_or_string):
            shown = f"number {_number_text(value)}"
        if node.int_or_string:
            # IntOrString decodes itself: its error names no struct field.
            self.found.type_errors.append(f"json: cannot unmarshal {shown} into Go value of type int32")
            return
        go_path = ".".join(seg for seg in self.path if isinstance(seg, str) and not seg.startswith("["))
        where = f"Go struct field {struct}.{go_path}" if struct and go_path else "Go value"
        self.found.type_errors.append(f"json: cannot unmarshal {shown} into {where} of type {node.go_type}")


def check(rt: ResourceType, obj: dict[str, Any]) -> Findings:
    """Unknown fields and type mismatches of a whole object of kind `rt`."""
    walker = _Walker()
    name = definition_name(rt)
    if name in definitions():
        walker.walk(_root(name), obj, rt.kind)
    return walker.found


def _fill(node: _Node, value: Any) -> None:
    if node.shape == "object" and isinstance(value, dict):
        for key, default in node.defaults.items():
            if key not in value:
                value[key] = copy.deepcopy(default)
        for key, item in value.items():
            child = node.props.get(key)
            if child is not None and child.shape:
                _fill(child, item)
    elif node.shape == "array" and isinstance(value, list) and node.child is not None and node.child.shape:
        for item in value:
            _fill(node.child, item)
    elif node.shape == "map" and isinstance(value, dict) and node.child is not None and node.child.shape:
        for item in value.values():
            _fill(node.child, item)


def fill_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Set every unconditional schema default on the fields `obj` leaves out, at any depth, in place."""
    name = definition_name(rt)
    if name in definitions():
        _fill(_root(name), obj)


@dataclass(frozen=True)
class ListSemantics:
    """How a list merges, from the schema's upstream annotations."""

    list_type: str  # "atomic", "set" or "map"
    map_keys: tuple[str, ...]
    merge_key: str  # strategic-merge-patch key, "" if none
    strategy: str  # "merge", "merge,retainKeys", "replace"... "" if none


def list_semantics(rt: ResourceType, path: list[str] | tuple[str, ...]) -> ListSemantics | None:
    """The merge annotations of the list at `path` (field names only, list indexes left out), such as
    `("spec", "template", "spec", "containers", "ports")`; None when the path is not a known list."""
    name = definition_name(rt)
    if name not in definitions():
        return None
    node: _Node | None = _root(name)
    for key in path:
        while node is not None and node.shape in ("array", "map"):
            node = node.child
        if node is None or node.shape != "object" or key not in node.props:
            return None
        node = node.props[key]
    if node is None or node.shape != "array":
        return None
    schema = node.schema
    return ListSemantics(str(schema.get("x-kubernetes-list-type", "")),
                         tuple(schema.get("x-kubernetes-list-map-keys", ())),
                         str(schema.get("x-kubernetes-patch-merge-key", "")),
                         str(schema.get("x-kubernetes-patch-strategy", "")))
