"""Property tests for the validators that keep hostile values out of the store.

The properties are the reasons the checks exist: a config key or a volume item
path that is accepted can never name a file outside the directory it is put
in; an accepted label value fits upstream's 63 characters; an integer is
accepted exactly when it fits its Go width. Hypothesis runs a bounded number
of examples by default (CI); PYK8S_HYPOTHESIS_EXAMPLES raises it for a longer
search.
"""

from __future__ import annotations

import os
import posixpath
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.api import errors, resources
from controlplane.api import validation as v
from controlplane.api.schema import type_errors
from controlplane.api.schema.volumes import local_descending_path, local_non_reserved_path
from controlplane.api.selectors import parse_label_selector

EXAMPLES = int(os.environ.get("PYK8S_HYPOTHESIS_EXAMPLES", "200"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None)

# Path-like text: mostly the characters that matter (dots, slashes), some of anything.
_path_chars = st.sampled_from([*"./-_aZ9", "..", "../", "/", "\\", "\x00", "é"])
PATHS = st.one_of(st.lists(_path_chars, max_size=12).map("".join), st.text(max_size=30))


def _inside(base: str, name: str) -> bool:
    joined = posixpath.normpath(posixpath.join(base, name))
    return joined.startswith(base + "/")


@BOUNDED
@given(PATHS)
def test_an_accepted_config_key_stays_a_file_inside_its_volume(key: str) -> None:
    accepted = not v.is_config_map_key(key)
    if accepted:
        assert _inside("/volume", key) and "/" not in key
    assert accepted == (re.fullmatch(r"[-._a-zA-Z0-9]+", key) is not None and len(key) <= 253
                        and key not in (".", "..") and not key.startswith(".."))


@BOUNDED
@given(PATHS)
def test_an_accepted_item_path_stays_inside_its_volume(path: str) -> None:
    if path and not local_non_reserved_path("p", path):
        assert _inside("/volume", path) or posixpath.normpath(path) == "."


@BOUNDED
@given(PATHS)
def test_an_accepted_sub_path_never_climbs_out(path: str) -> None:
    if not local_descending_path("p", path):
        assert not path.startswith("/")
        assert ".." not in path.replace("\\", "/").split("/")


@BOUNDED
@given(st.text(max_size=80))
def test_label_values_accepted_only_within_upstream_rules(value: str) -> None:
    accepted = not v.is_valid_label_value(value)
    assert accepted == (len(value) <= 63 and re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
                                                          value) is not None)


@BOUNDED
@given(st.text(alphabet="abc-./_XYZ019", max_size=300))
def test_qualified_names_bound_their_parts(key: str) -> None:
    if not v.is_qualified_name(key):
        prefix, _, name = key.rpartition("/")
        assert 0 < len(name) <= 63 and len(prefix) <= 253 and key.count("/") <= 1


@BOUNDED
@given(st.one_of(st.integers(min_value=-(2 ** 70), max_value=2 ** 70), st.floats(allow_nan=False)))
def test_replicas_accepted_exactly_within_int32(value: int | float) -> None:
    found = type_errors(resources.DEPLOYMENTS, {"spec": {"replicas": value}})
    fits = isinstance(value, int) and -(2 ** 31) <= value < 2 ** 31
    assert (found == []) == fits
    if not fits:
        assert found[0].startswith("json: cannot unmarshal number ")
        assert found[0].endswith(" into Go struct field DeploymentSpec.spec.replicas of type int32")


@BOUNDED
@given(st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
def test_int64_fields_accept_exactly_int64(value: int) -> None:
    pod = {"spec": {"terminationGracePeriodSeconds": value}}
    assert (type_errors(resources.PODS, pod) == []) == (-(2 ** 63) <= value < 2 ** 63)


@BOUNDED
@given(st.text(alphabet="abcXYZ019", min_size=64, max_size=100))
def test_selector_values_over_63_characters_are_refused(value: str) -> None:
    for text in (f"x={value}", f"x in (a,{value})", f"x notin ({value})"):
        with pytest.raises(errors.StatusError) as caught:
            parse_label_selector(text)
        assert caught.value.code == 400
        assert "must be no more than 63 characters" in caught.value.message
