"""Exact upstream wording of the validators' messages, field paths and cause reasons.

Clients and kubectl show these strings as they are, and some match on them:
each case here is a string upstream's apimachinery or core validation
produces for the same input.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api import errors, resources
from controlplane.api import validation as v
from controlplane.api.schema import validate
from controlplane.api.schema.objectmeta import label_selector_causes
from controlplane.api.selectors import parse_label_selector

QUALIFIED_REGEX = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                   "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
                   "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


@pytest.mark.parametrize(("key", "expected"), [
    ("app", []),
    ("example.com/app", []),
    ("Example.com/app", ["prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                         "'example.com', regex used for validation is "
                         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ("a/", ["name part must be non-empty", f"name part {QUALIFIED_REGEX}"]),
    ("x" * 64, ["name part must be no more than 63 characters"]),
    ("-x-", [f"name part {QUALIFIED_REGEX}"]),
])
def test_qualified_names(key: str, expected: list[str]) -> None:
    assert v.is_qualified_name(key) == expected


@pytest.mark.parametrize(("value", "quoted"), [
    ("plain", '"plain"'), ('say "hi"', '"say \\"hi\\""'), ("a\nb\tc", '"a\\nb\\tc"'), ("\x00", '"\\x00"'),
    ("é", '"é"'), ("\u200b", '"\\u200b"'),
])
def test_values_are_quoted_as_go_does(value: str, quoted: str) -> None:
    assert v.go_quote(value) == quoted


def test_invalid_status_lists_every_cause_in_brackets() -> None:
    obj = {"metadata": {"name": "x"}, "data": {"/a": "1", "..": "2"}}
    causes = validate(resources.CONFIGMAPS, obj)
    status = errors.invalid("ConfigMap", "x", causes)
    config_key = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
    assert status.message == (f'ConfigMap "x" is invalid: [data[/a]: Invalid value: "/a": {config_key}, '
                              "data[..]: Invalid value: \"..\": must not be '..']")


@pytest.mark.parametrize(("selector", "expected"), [
    ({"matchLabels": {"a": "b" * 64}},
     [("FieldValueInvalid", "s.matchLabels", f'Invalid value: "{"b" * 64}": must be no more than 63 characters')]),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
     [("FieldValueRequired", "s.matchExpressions[0].values",
       "Required value: must be specified when `operator` is 'In' or 'NotIn'")]),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "-bad"]}]},
     [("FieldValueInvalid", "s.matchExpressions[0].values[1]",
       'Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric characters, '
       "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
       "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
])
def test_selectors_in_objects(selector: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert [(c.reason, c.field, c.message) for c in label_selector_causes("s", selector)] == expected


def test_query_selector_with_several_errors_aggregates_them() -> None:
    with pytest.raises(errors.StatusError) as caught:
        parse_label_selector("k" * 64 + " in ()")
    assert caught.value.code == 400
    assert caught.value.message == (
        f'unable to parse requirement: [key: Invalid value: "{"k" * 64}": name part must be no more than 63 '
        "characters, values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty]")


def test_query_selector_values_are_a_sorted_set() -> None:
    [requirement] = parse_label_selector("x in (b, a, b)").requirements
    assert requirement.values == ("a", "b")
