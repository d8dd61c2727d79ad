"""The request-body decoders under hostile input: go-yaml's alias budget, the depth limit, YAML-to-JSON
conversions, duplicate keys, and property tests (hypothesis) that any bytes give data or a DecodeError.

The property tests run `HYPOTHESIS_EXAMPLES` examples each (default 200, quick enough for CI); a longer
run by hand: `HYPOTHESIS_EXAMPLES=20000 .venv/bin/python -m pytest tests/unit/apiserver/test_hostile_decoding.py`.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.apiserver import decoding
from controlplane.apiserver.decoding import DecodeError, decode_json, decode_yaml

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "200"))
budget = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def go_yaml_refuses(text: str) -> bool:
    """A reference for go-yaml's rule, by brute force: expand every alias of the composed document in
    document order, counting decodes the way go-yaml's decoder does, and apply its check at each node.

    PyYAML's composer puts the anchored node itself where an alias was, so which edges are aliases is found
    first: an edge is an alias when, on the document-order walk, its child had been met already."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return False
    alias_edges: set[tuple[int, int]] = set()
    seen: set[int] = set()

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [item for pair in node.value for item in pair]
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []

    def mark(node: yaml.Node) -> None:
        seen.add(id(node))
        for index, child in enumerate(children(node)):
            if id(child) in seen:
                alias_edges.add((id(node), index))
            else:
                mark(child)

    mark(root)
    decode_count, alias_count = 1, 0  # the document node

    def visit(node: yaml.Node, in_alias: bool) -> bool:
        nonlocal decode_count, alias_count
        decode_count += 1
        alias_count += in_alias
        if decoding._excessive(alias_count, decode_count):
            return True
        for index, child in enumerate(children(node)):
            if (id(node), index) in alias_edges:
                decode_count += 1  # the alias node itself
                alias_count += in_alias
                if decoding._excessive(alias_count, decode_count) or visit(child, True):
                    return True
            elif visit(child, in_alias):
                return True
        return False

    return visit(root, False)


def test_alias_ratio_matches_go_yaml() -> None:
    assert decoding.allowed_alias_ratio(1_000) == 0.99
    assert decoding.allowed_alias_ratio(400_000) == 0.99
    assert decoding.allowed_alias_ratio(4_000_000) == 0.10
    assert decoding.allowed_alias_ratio(2_200_000) == pytest.approx(0.545)


def laughs(levels: int, fan_out: int) -> str:
    lines = ["l0: &l0 [lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fan_out) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("levels", "fan_out"), [(9, 9), (4, 10), (3, 10), (2, 2), (6, 4), (12, 2), (30, 2)])
def test_billion_laughs_against_the_reference(levels: int, fan_out: int) -> None:
    text = laughs(levels, fan_out)
    refused = False
    try:
        decode_yaml(text)
    except DecodeError as exc:
        assert exc.detail == "yaml: document contains excessive aliasing"
        refused = True
    if fan_out ** levels < 200_000:  # the reference expands everything: only where that is affordable
        assert refused == go_yaml_refuses(text)
    else:
        assert refused


def test_aliases_give_independent_copies() -> None:
    found = decode_yaml("a: &x {k: v}\nb: *x\n").value
    found["a"]["k"] = "changed"
    assert found["b"] == {"k": "v"}


def test_depth_counts_what_an_alias_expands_to() -> None:
    inner = "[" * 60 + "]" * 60
    assert decode_yaml(f"a: &d {inner}\nb: {'[' * 60}*d{']' * 60}\n".replace("*d", "*d")).value
    with pytest.raises(DecodeError, match="exceeded max depth of 128"):
        decode_yaml(f"a: &d {inner}\nb: {'[' * 70}*d{']' * 70}\n")


@pytest.mark.parametrize(("text", "value"), [
    ("a: 99999999999999999999999", {"a": 1e23}),
    ("a: 18446744073709551615", {"a": 18446744073709551615}),
    ("a: -9223372036854775809", {"a": -9.223372036854775809e18}),
    ("a: 1" + "0" * 400, {"a": "1" + "0" * 400}),
    ("{1: a, true: b, 1.5: c, null: d}", None),
    ("a: 2001-12-14t21:59:43.10-05:00", {"a": "2001-12-14t21:59:43.10-05:00"}),
    ("a: !!set {x, y}", {"a": {"x": None, "y": None}}),
    ("a: !!binary aGVsbG8=", {"a": "hello"}),
])
def test_yaml_to_json_as_sigs_yaml(text: str, value: Any) -> None:
    if value is None:
        with pytest.raises(DecodeError, match="unsupported map key of type: <nil>"):
            decode_yaml(text)
        return
    assert decode_yaml(text).value == value
    orjson.dumps(decode_yaml(text).value)


@pytest.mark.parametrize(("text", "detail"), [
    ("a: .nan", "json: unsupported value: NaN"),
    ("a: -.inf", "json: unsupported value: -Inf"),
    ("? [a]\n: b", "unsupported map key of type: []interface {}, key: ['a'], value: 'b'"),
    ('a: "\\ud800"', "yaml: line 1: found invalid Unicode character escape code"),
])
def test_yaml_refusals(text: str, detail: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_yaml(text)
    assert caught.value.detail == detail


def test_duplicates() -> None:
    assert decode_yaml("a: 1\nb:\n  c: 1\n  c: 2\n").duplicates == [
        'yaml: unmarshal errors:\n  line 4: key "c" already set in map']
    assert decode_json(b'{"a": 1, "a": 2}', True).duplicates == ['duplicate field "a"']
    assert decode_json(b'{"a": 1, "a": 2}').duplicates == []  # only looked for when asked
    assert decode_json(b'{"a": 1, "a": 2}').value == {"a": 2}  # last wins, as upstream's decoder


def test_json_depth() -> None:
    decode_json(b"[" * 128 + b"]" * 128)
    for levels in (129, 300, 2000):
        with pytest.raises(DecodeError, match="exceeded max depth"):
            decode_json(b"[" * levels + b"]" * levels)


# -- properties ----------------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_like = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                         max_leaves=30)


@budget
@given(json_like)
def test_json_round_trips(value: Any) -> None:
    found = decode_json(orjson.dumps(value), True)
    assert found.value == value and found.duplicates == []


@budget
@given(json_like)
def test_yaml_round_trips(value: Any) -> None:
    text = yaml.safe_dump(value)
    found = decode_yaml(text)
    assert found.value == value or _has_float_ints(value)
    orjson.dumps(found.value)


def _has_float_ints(value: Any) -> bool:
    """YAML writes 1e+16 as a float that may read back as an int-valued float: equal anyway except -0.0."""
    return "-0.0" in orjson.dumps(value).decode()


@budget
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_refuse(body: bytes) -> None:
    for decode in (decode_yaml, decode_json):
        try:
            found = decode(body)
        except DecodeError:
            continue
        orjson.dumps(found.value)  # whatever is accepted can be stored and encoded again


yaml_pieces = st.sampled_from(["a", "1", "-1", "0x1F", "1e400", "99999999999999999999", ".inf", "~", "null",
                               "true", "2001-01-01", "!!binary aGk=", "!!set {x}", "&x [1]", "*x", "{", "}",
                               "[", "]", ",", ": ", "\n", "\n  ", "- ", "? ", '"\\u00e9"', "'q'", "<<: *x", "|\n  t"])


@budget
@given(st.lists(yaml_pieces, max_size=30))
def test_yaml_shaped_text_decodes_or_refuses(pieces: list[str]) -> None:
    try:
        found = decode_yaml("".join(pieces))
    except DecodeError:
        return
    orjson.dumps(found.value)
    decoding.depth_of(found.value) if isinstance(found.value, (dict, list)) else None


@budget
@given(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=12),
       st.integers(min_value=0, max_value=40))
def test_alias_budget_equals_the_reference(levels: int, fan_out: int, padding: int) -> None:
    text = laughs(levels, fan_out) + "".join(f"p{i}: [x, y, z]\n" for i in range(padding))
    if fan_out ** levels > 100_000:
        return
    try:
        decode_yaml(text)
        refused = False
    except DecodeError:
        refused = True
    assert refused == go_yaml_refuses(text)
