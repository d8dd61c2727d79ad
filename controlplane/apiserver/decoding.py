"""Request-body decoding that hostile input cannot turn into a stall, a 500 or an unencodable stored object.

Why this module exists: `yaml.safe_load` and `orjson.loads` alone accept bodies
that hurt the server afterwards — a 430-byte YAML alias bomb that expands to a
131 MB object, a field nested 253 levels deep that orjson can store but never
encode again (orjson refuses more than 254 levels on `dumps`, so every later
list and watch of that kind answered 500), out-of-range YAML integers,
non-string YAML keys and YAML-only types (sets, timestamps, binary) that JSON
cannot hold, and duplicate keys that silently lose data. Each is refused here
at decode time with upstream's words, or converted as upstream's
`sigs.k8s.io/yaml` converts it:

- Aliasing: upstream's go-yaml counts every node it decodes, expanding aliases,
  and refuses "document contains excessive aliasing" once more than 100 alias
  nodes and more than 1,000 nodes have been decoded and the share of alias nodes
  exceeds 99% (up to 400,000 nodes) falling linearly to 10% (at 4,000,000). The
  same counters are kept here from libyaml's event stream — without expanding
  anything (an anchored subtree's size is known when it ends) — before the
  document is built.
- Depth: upstream's decoders stop at 10,000 levels. pyk8s stops at
  `MAX_DEPTH` (128) levels, far enough below orjson's 254 that no stored object
  can become unencodable even inside a list (+2 levels), a watch event (+1) or a
  Table row with its object (+3); aliases count with the depth they expand to.
  libyaml itself stops at 1,000 levels of flow nesting.
- YAML to JSON, as `sigs.k8s.io/yaml` does it: integer, float and boolean map
  keys become strings, other keys are refused ("unsupported map key"); an
  integer outside int64/uint64 becomes a float (a string if it is outside the
  float range too); timestamps stay strings; `!!set` is a map, `!!binary` the
  decoded text; NaN and infinities are refused as Go's JSON encoder refuses
  them.
- Duplicate keys: JSON is decoded by orjson (last key wins, as upstream's
  non-strict decoder); only when the caller asks for them (fieldValidation
  Strict or Warn) is the body decoded a second time by `json.loads` with an
  `object_pairs_hook` that records duplicates. YAML duplicates are recorded by
  the loader's mapping constructor, with the line, in go-yaml's words.

Bodies larger than `OFFLOAD_BYTES` are decoded on a small thread pool so one
client's multi-megabyte body does not stop the event loop serving others.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import yaml

from controlplane import heap
from controlplane.api import errors

MAX_DEPTH = 128
OFFLOAD_BYTES = 64 * 1024  # bodies above this size are decoded off the event loop
DECODE_THREADS = 2  # bounded: a flood of large bodies queues instead of multiplying threads
INT64_MIN, UINT64_MAX = -(2 ** 63), 2 ** 64 - 1

# go-yaml's alias budget (decode.go): thresholds and the ratio's range
ALIAS_COUNT_FLOOR = 100
DECODE_COUNT_FLOOR = 1000
ALIAS_RATIO_RANGE_LOW = 400_000
ALIAS_RATIO_RANGE_HIGH = 4_000_000

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where built
_executor: ThreadPoolExecutor | None = None
T = TypeVar("T")


class DecodeError(Exception):
    """A body that cannot be decoded; `detail` is upstream's decoder message (without any prefix)."""

    def __init__(self, detail: str, syntax: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.syntax = syntax  # a plain syntax error, as opposed to a refused but well-formed document


@dataclass
class Decoded:
    """A decoded body and the duplicate keys found, as strict-decoding messages (only when asked for)."""

    value: Any
    duplicates: list[str] = field(default_factory=list)


def allowed_alias_ratio(decode_count: int) -> float:
    """go-yaml's share of decoded nodes that may come from alias expansion, for a document this large."""
    if decode_count <= ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    span = ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW
    return 0.99 - 0.89 * ((decode_count - ALIAS_RATIO_RANGE_LOW) / span)


def _excessive(alias_count: int, decode_count: int) -> bool:
    return (alias_count > ALIAS_COUNT_FLOOR and decode_count > DECODE_COUNT_FLOOR
            and alias_count / decode_count > allowed_alias_ratio(decode_count))


def check_yaml_events(body: bytes | str, max_depth: int = MAX_DEPTH) -> bool:
    """Walk libyaml's events once: refuse excessive aliasing (go-yaml's rule) and nesting deeper than
    `max_depth`, counting each alias with the size and depth of what it stands for. Returns whether the
    document uses aliases at all."""
    decode_count = alias_count = 0
    depth = 0
    open_: list[tuple[str | None, int, int]] = []  # (anchor, decode count at start, deepest level inside)
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes it expands to, levels it spans)
    used_alias = False

    def deepen(level: int) -> None:
        if level > max_depth:
            raise DecodeError(f"yaml: exceeded max depth of {max_depth}")
        if open_:
            anchor, start, deepest = open_[-1]
            if level > deepest:
                open_[-1] = (anchor, start, level)

    try:
        for event in yaml.parse(body, Loader=_Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                decode_count += 1
                depth += 1
                deepen(depth)
                open_.append((event.anchor, decode_count - 1, depth))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                anchor, start, deepest = open_.pop()
                if anchor is not None:
                    sizes[anchor] = (decode_count - start, deepest - depth + 1)
                depth -= 1
                if open_ and deepest > open_[-1][2]:
                    open_[-1] = (open_[-1][0], open_[-1][1], deepest)
            elif isinstance(event, yaml.ScalarEvent):
                decode_count += 1
                if event.anchor is not None:
                    sizes[event.anchor] = (1, 0)
            elif isinstance(event, yaml.AliasEvent):
                used_alias = True
                size, levels = sizes.get(event.anchor or "", (1, 0))
                decode_count += 1 + size
                alias_count += size
                deepen(depth + levels)
            elif isinstance(event, yaml.DocumentStartEvent):
                decode_count += 1
            if _excessive(alias_count, decode_count):
                raise DecodeError("yaml: document contains excessive aliasing")
    except yaml.YAMLError as exc:
        raise DecodeError(f"yaml: {_yaml_problem(exc)}", syntax="nesting depth" not in str(exc)) from None
    return used_alias


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """go-yaml's short form of a parse error: `line 3: did not find expected key`."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark or exc.context_mark
        return f"line {mark.line + 1}: {exc.problem}" if mark is not None else exc.problem
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _go_type(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[interface {}]interface {}"
    return type(value).__name__


def _json_key(key: Any, value: Any) -> str:
    """A map key as sigs.k8s.io/yaml writes it into JSON."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if math.isnan(key):
            return ".nan"
        if math.isinf(key):
            return ".inf" if key > 0 else "-.inf"
        return repr(key)
    raise DecodeError(f"unsupported map key of type: {_go_type(key)}, key: {key!r}, value: {value!r}")


def _json_int(value: int, text: str) -> Any:
    if INT64_MIN <= value <= UINT64_MAX:
        return value
    try:
        return float(value)  # go-yaml: not an int64 or uint64 -> a float64
    except OverflowError:
        return text  # outside the float range: go-yaml leaves the scalar a string


class _HostileSafeLoader(_Loader):  # type: ignore[misc,valid-type]
    """The C safe loader, building only what JSON can hold, recording duplicate keys."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, f"expected a mapping node, but found {node.id}",
                                                    node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            value = self.construct_object(value_node, deep=deep)
            if isinstance(key, (list, dict)):
                raise DecodeError(f"unsupported map key of type: {_go_type(key)}, key: {key!r}, value: {value!r}")
            name = _json_key(key, value)
            if name in mapping:
                shown = f'"{name}"' if isinstance(key, str) else name
                self.duplicates.append(f"line {key_node.start_mark.line + 1}: key {shown} already set in map")
            mapping[name] = value
        return mapping

    def construct_yaml_map(self, node: Any) -> Any:
        data: dict[str, Any] = {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_yaml_int(self, node: Any) -> Any:
        value = super().construct_yaml_int(node)
        return _json_int(value, str(node.value))

    def construct_yaml_float(self, node: Any) -> Any:
        value = super().construct_yaml_float(node)
        if math.isnan(value) or math.isinf(value):
            shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
            raise DecodeError(f"json: unsupported value: {shown}")
        return value

    def construct_as_string(self, node: Any) -> str:
        return str(self.construct_scalar(node))

    def construct_binary_text(self, node: Any) -> str:
        raw = base64.b64decode(str(self.construct_scalar(node)).encode("ascii", "replace"))
        return raw.decode("utf-8", "replace")


_HostileSafeLoader.add_constructor("tag:yaml.org,2002:map", _HostileSafeLoader.construct_yaml_map)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:set", _HostileSafeLoader.construct_yaml_map)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:omap", _HostileSafeLoader.construct_yaml_seq)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:pairs", _HostileSafeLoader.construct_yaml_seq)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:int", _HostileSafeLoader.construct_yaml_int)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:float", _HostileSafeLoader.construct_yaml_float)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _HostileSafeLoader.construct_as_string)
_HostileSafeLoader.add_constructor("tag:yaml.org,2002:binary", _HostileSafeLoader.construct_binary_text)


def depth_of(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise when containers nest deeper than `limit` (the top-level object is level 1). Iterative, so a
    deep value cannot exhaust the interpreter's stack here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if level + 1 > limit:
                    opener = "{" if isinstance(child, dict) else "["
                    raise DecodeError(f"invalid character '{opener}' exceeded max depth")
                if child:
                    stack.append((child, level + 1))


def decode_yaml(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> Decoded:
    """One YAML document as JSON-compatible data, with go-yaml's duplicate-key messages."""
    used_alias = check_yaml_events(body, max_depth)
    loader = _HostileSafeLoader(body)
    try:
        value = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise DecodeError(f"yaml: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise DecodeError(f"yaml: exceeded max depth of {max_depth}") from None
    finally:
        loader.dispose()
    if used_alias:
        value = orjson.loads(orjson.dumps(value))  # aliases share objects: give each use its own copy
    return Decoded(value, [f"yaml: unmarshal errors:\n  {d}" for d in loader.duplicates])


def _duplicate_hook(found: list[str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                found.append(f'duplicate field "{key}"')
            seen[key] = value
        return seen
    return hook


def decode_json(body: bytes | str, duplicates: bool = False, *, max_depth: int = MAX_DEPTH) -> Decoded:
    """A JSON document via orjson; with `duplicates`, also the duplicate fields (as upstream's strict
    decoder names them: `duplicate field "a"`)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit exceeded" in str(exc):
            opener = chr(body[exc.pos]) if isinstance(body, bytes) and exc.pos < len(body) else "{"
            raise DecodeError(f"invalid character {opener!r} exceeded max depth") from None
        raise DecodeError(str(exc), syntax=True) from None
    if isinstance(value, (dict, list)):
        depth_of(value, max_depth)
    found: list[str] = []
    if duplicates and isinstance(value, (dict, list)):
        json.loads(body, object_pairs_hook=_duplicate_hook(found))  # already known to be valid, shallow JSON
    return Decoded(value, found)


def decode(body: bytes, yaml_body: bool, *, duplicates: bool = False, max_depth: int = MAX_DEPTH) -> Decoded:
    if yaml_body:
        return decode_yaml(body, max_depth=max_depth)
    return decode_json(body, duplicates=duplicates, max_depth=max_depth)


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode")
    return _executor


async def off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound `fn(*args)` on the decode pool when the input is large; inline when it is small
    (a thread hop costs more than decoding a few kilobytes)."""
    if size <= OFFLOAD_BYTES:
        return fn(*args)
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool(), lambda: fn(*args))
    finally:
        heap.TRIMMER.soon()  # a large parse leaves megabytes of freed intermediate objects


def summarize(body: bytes, max_length: int = 30) -> str:
    """Upstream's summary of an undecodable body in its error message: JSON-looking text as is, anything
    else in hex, cut at 30 bytes."""
    if not body:
        return "<empty>"
    if body[:1] == b"{":
        text = body[:max_length].decode("utf-8", "replace")
        return text + " ..." if len(body) > max_length else text
    return body[:max_length].hex() + (" ..." if len(body) > max_length else "")


def unrecognized(kind: str, detail: str, body: bytes) -> errors.StatusError:
    """Upstream's 400 for a body that could not be decoded at all."""
    return errors.bad_request(f"the object provided is unrecognized (must be of type {kind}): {detail} "
                              f"({summarize(body)})")
