from __future__ import annotations

from controlplane.controllers.deployment import (
    REVISION_HISTORY_MAX_CHARS,
    appended_revision_history,
    resolve,
    surge_and_unavailable,
    template_hash,
)
from controlplane.controllers.replicaset import deletion_rank


def test_surge_rounds_up_and_unavailable_rounds_down() -> None:
    assert resolve("25%", 10, round_up=True) == 3
    assert resolve("25%", 10, round_up=False) == 2
    assert resolve(1, 10, round_up=True) == 1
    deploy = {"spec": {"replicas": 3, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}}
    assert surge_and_unavailable(deploy) == (0, 1)  # both zero would never progress


def test_template_hash_is_stable_and_sensitive() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    same = {"spec": {"containers": [{"image": "i:1", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}}
    assert template_hash(template) == template_hash(same)
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "i:2"}]}}
    assert template_hash(template) != template_hash(changed)
    assert template_hash(template) != template_hash(template, collision_count=1)
    assert set(template_hash(template)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_deletion_prefers_unscheduled_then_not_ready_then_newer() -> None:
    def pod(name: str, node: str | None, ready: bool, created: str) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node} if node else {},
                "status": {"phase": "Running" if node else "Pending",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}

    pods = [pod("old-ready", "n", True, "2026-01-01T00:00:00Z"), pod("new-ready", "n", True, "2026-01-02T00:00:00Z"),
            pod("not-ready", "n", False, "2026-01-01T00:00:00Z"), pod("unscheduled", None, False,
                                                                      "2026-01-01T00:00:00Z")]
    order = [p["metadata"]["name"] for p in sorted(pods, key=deletion_rank)]
    assert order == ["unscheduled", "not-ready", "new-ready", "old-ready"]


def test_revision_history_appends_and_drops_the_oldest_past_the_limit() -> None:
    assert appended_revision_history("", 1) == "1"
    assert appended_revision_history("1,3", 5) == "1,3,5"
    long = ",".join(str(n) for n in range(1000, 1400))  # 2,000 chars minus one comma
    assert len(long) == REVISION_HISTORY_MAX_CHARS - 1
    trimmed = appended_revision_history(long, 9999)
    assert trimmed.endswith(",1399,9999") and not trimmed.startswith("1000,")
    assert len(trimmed) <= REVISION_HISTORY_MAX_CHARS
