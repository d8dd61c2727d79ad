from __future__ import annotations

from controlplane.controllers.nodelifecycle import toleration_seconds

TAINT = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


def test_default_applies_without_a_matching_toleration() -> None:
    assert toleration_seconds({"spec": {}}, TAINT, 300) == 300


def test_explicit_seconds_and_forever() -> None:
    timed = {"spec": {"tolerations": [{"key": TAINT["key"], "operator": "Exists", "effect": "NoExecute",
                                       "tolerationSeconds": 5}]}}
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    other = {"spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}}
    assert toleration_seconds(timed, TAINT, 300) == 5
    assert toleration_seconds(forever, TAINT, 300) is None
    assert toleration_seconds(other, TAINT, 300) == 300
