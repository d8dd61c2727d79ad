"""Pod topologySpreadConstraints are refused with upstream's field paths and messages."""

from __future__ import annotations

from typing import Any

from controlplane.api.schema import validate_pod_spec

BASE = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}}}


def _messages(*constraints: dict[str, Any]) -> list[str]:
    spec = {"containers": [{"name": "c", "image": "i"}], "topologySpreadConstraints": list(constraints)}
    return [f"{c.field}: {c.message}" for c in validate_pod_spec("spec", spec)]


def test_a_valid_constraint_passes() -> None:
    assert _messages(BASE, {**BASE, "whenUnsatisfiable": "ScheduleAnyway", "matchLabelKeys": ["pod-template-hash"]},
                     {**BASE, "topologyKey": "kubernetes.io/hostname", "minDomains": 3,
                      "nodeAffinityPolicy": "Ignore", "nodeTaintsPolicy": "Honor"}) == []


def test_each_bad_field_is_named() -> None:
    p = "spec.topologySpreadConstraints[0]"
    assert _messages({**BASE, "maxSkew": 0}) == [f"{p}.maxSkew: Invalid value: 0: must be greater than zero"]
    assert _messages({**BASE, "topologyKey": ""}) == [f"{p}.topologyKey: Required value: can not be empty"]
    assert _messages({**BASE, "whenUnsatisfiable": "Sometimes"}) == [
        f'{p}.whenUnsatisfiable: Unsupported value: "Sometimes": supported values: "DoNotSchedule", '
        '"ScheduleAnyway"']
    assert _messages({**BASE, "minDomains": 0}) == [f"{p}.minDomains: Invalid value: 0: must be greater than zero"]
    assert _messages({**BASE, "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2}) == [
        f"{p}.minDomains: Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule, "
        "not ScheduleAnyway"]
    assert _messages({**BASE, "nodeTaintsPolicy": "Always"}) == [
        f'{p}.nodeTaintsPolicy: Unsupported value: "Always": supported values: "Honor", "Ignore"']
    assert _messages({**BASE, "matchLabelKeys": ["app"]}) == [
        f'{p}.matchLabelKeys[0]: Invalid value: "app": exists in both matchLabelKeys and labelSelector']
    assert len(_messages({**BASE, "matchLabelKeys": ["not a key!"]})) == 1


def test_a_repeated_key_and_action_is_a_duplicate() -> None:
    assert _messages(BASE, {**BASE, "maxSkew": 2}) == [
        'spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: '
        '"{zone, DoNotSchedule}"']
