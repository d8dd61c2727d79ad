from __future__ import annotations

import pytest

from controlplane.api.errors import StatusError
from controlplane.api.selectors import parse_field_selector, parse_label_selector, selector_from_spec


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("env in (prod, staging),tier", {"env": "prod", "tier": "x"}, True),
    ("env notin (prod)", {"env": "prod"}, False),
    ("!legacy", {"legacy": "1"}, False),
    ("", {"anything": "x"}, True),
])
def test_label_selector_syntax(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize("bad", ["app=web=x", "app in prod", "==x"])
def test_bad_label_selector_is_a_400(bad: str) -> None:
    with pytest.raises(StatusError) as err:
        parse_label_selector(bad)
    assert err.value.code == 400 and err.value.reason == "BadRequest"


def test_label_selector_spec_nil_empty_and_expressions() -> None:
    assert not selector_from_spec(None).matches({"a": "b"})
    assert selector_from_spec({}).matches({"a": "b"})
    spec = {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}
    assert selector_from_spec(spec).matches({"a": "b"})
    assert not selector_from_spec(spec).matches({"a": "b", "c": "d"})


def test_field_selector_and_unknown_field() -> None:
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed", {"spec.nodeName", "status.phase"})
    assert sel.matches({"spec.nodeName": "n1", "status.phase": "Running"})
    assert not sel.matches({"spec.nodeName": "n1", "status.phase": "Failed"})
    with pytest.raises(StatusError, match=r"field label not supported: spec\.bogus"):
        parse_field_selector("spec.bogus=x", {"spec.nodeName"})
