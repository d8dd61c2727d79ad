from __future__ import annotations

import orjson
import pytest

from controlplane.api import patch
from controlplane.api.errors import StatusError

POD = {"spec": {"containers": [
    {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}], "env": [{"name": "X", "value": "1"}]},
    {"name": "b", "image": "b:1"}]}}


def test_strategic_merge_merges_containers_by_name_and_keeps_the_rest() -> None:
    body = orjson.dumps({"spec": {"containers": [{"name": "b", "image": "b:2"},
                                                 {"name": "a", "env": [{"name": "Y", "value": "2"}]}]}})
    out = patch.apply_patch(POD, body, patch.STRATEGIC_MERGE_PATCH)
    a, b = out["spec"]["containers"]
    assert b["image"] == "b:2" and a["image"] == "a:1" and a["ports"] == [{"containerPort": 80}]
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]


def test_strategic_merge_delete_directive_and_null() -> None:
    body = orjson.dumps({"spec": {"containers": [{"name": "a", "$patch": "delete"},
                                                 {"name": "b", "image": None}]}})
    out = patch.apply_patch(POD, body, patch.STRATEGIC_MERGE_PATCH)
    assert out["spec"]["containers"] == [{"name": "b"}]


def test_merge_patch_replaces_lists() -> None:
    body = orjson.dumps({"spec": {"containers": [{"name": "c", "image": "c:1"}]}})
    out = patch.apply_patch(POD, body, patch.MERGE_PATCH)
    assert out["spec"]["containers"] == [{"name": "c", "image": "c:1"}]


def test_json_patch_and_its_errors() -> None:
    out = patch.apply_patch(POD, b'[{"op": "replace", "path": "/spec/containers/1/image", "value": "z"}]',
                            patch.JSON_PATCH)
    assert out["spec"]["containers"][1]["image"] == "z"
    with pytest.raises(StatusError) as err:
        patch.apply_patch(POD, b'[{"op": "remove", "path": "/nope"}]', patch.JSON_PATCH)
    assert err.value.code == 422
    with pytest.raises(StatusError) as bad:
        patch.apply_patch(POD, b"{not json", patch.MERGE_PATCH)
    assert bad.value.code == 400


def test_server_side_apply_conflicts_and_force() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}}
    first = patch.server_side_apply(obj, {**obj, "spec": {"replicas": 1}}, "alice", False, "t")
    with pytest.raises(StatusError) as err:
        patch.server_side_apply(first, {**obj, "spec": {"replicas": 5}}, "bob", False, "t")
    assert err.value.code == 409 and 'conflict with "alice"' in err.value.message and ".spec.replicas" in \
        err.value.message
    forced = patch.server_side_apply(first, {**obj, "spec": {"replicas": 5}}, "bob", True, "t")
    assert forced["spec"]["replicas"] == 5
    assert {e["manager"] for e in forced["metadata"]["managedFields"]} == {"alice", "bob"}
