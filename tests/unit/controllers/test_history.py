"""ControllerRevision history: data shape, hashing and naming, reuse of an equal revision, the history limit."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from controlplane.api.errors import already_exists, not_found
from controlplane.controllers import history as h

Obj = dict[str, Any]
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}


def owner(template: Obj = TEMPLATE, **extra: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u-1", "annotations": {"a": "b"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": copy.deepcopy(template), **extra}}


def revision(name: str, number: int, data: Obj | None = None, uid: str | None = "u-1", **labels: str) -> Obj:
    refs = [{"kind": "DaemonSet", "name": "web", "uid": uid, "controller": True}] if uid else []
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1", "labels": {"app": "web", **labels},
                         "ownerReferences": refs},
            "data": data if data is not None else {"spec": {"template": {"$patch": "replace", "n": name}}},
            "revision": number}


def test_data_is_a_replace_patch_of_the_template_with_sorted_keys() -> None:
    data = h.template_patch(owner())
    assert data == {"spec": {"template": {**TEMPLATE, "$patch": "replace"}}}
    assert orjson.dumps(data) == orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    assert h.template_of({"data": data}) == TEMPLATE
    assert "$patch" not in owner()["spec"]["template"]  # the set itself is left alone


def test_hash_is_stable_sensitive_and_salted_and_names_fit() -> None:
    data = h.template_patch(owner())
    reordered = h.template_patch(owner({"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]}))
    assert h.revision_hash(data) == h.revision_hash(reordered)
    other = h.template_patch(owner({**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "i:2"}]}}))
    assert h.revision_hash(data) != h.revision_hash(other)
    assert h.revision_hash(data) != h.revision_hash(data, collision_count=1)
    assert set(h.revision_hash(data)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert h.revision_name("web", "abc") == "web-abc"
    long = h.revision_name("x" * 300, h.revision_hash(data))
    assert long.startswith("x" * 223 + "-") and len(long) <= 253


def test_plan_creates_reuses_or_moves_an_equal_revision_to_the_top() -> None:
    a, b = h.template_patch(owner()), {"spec": {"template": {"$patch": "replace", "other": 1}}}
    assert h.plan([], a) == h.Plan("create", 1)
    history = [revision("web-a", 1, a), revision("web-b", 2, b)]
    assert h.plan(history, {"spec": {"template": {"$patch": "replace", "new": 1}}}) == h.Plan("create", 3)
    reuse = h.plan(history, b)
    assert (reuse.action, reuse.number, reuse.revision) == ("reuse", 2, history[1])
    back = h.plan(history, a)  # a rollback to the first template
    assert (back.action, back.number, back.revision) == ("bump", 3, history[0])


def test_limit_deletes_the_oldest_unused_revisions_only() -> None:
    history = [revision(f"web-{i}", i) for i in range(1, 7)]
    used = {"web-2", "web-6"}
    doomed = h.to_delete(history, 2, lambda r: r["metadata"]["name"] in used)
    assert [r["metadata"]["name"] for r in doomed] == ["web-1", "web-3"]  # web-4, web-5 stay as history
    assert h.to_delete(history, 10, lambda r: False) == []
    assert [r["revision"] for r in h.to_delete(history, 0, lambda r: r["revision"] == 6)] == [1, 2, 3, 4, 5]
    assert h.history_limit(owner()) == 10
    assert h.history_limit(owner(revisionHistoryLimit=0)) == 0
    assert [r["revision"] for r in h.sort_revisions(list(reversed(history)))] == [1, 2, 3, 4, 5, 6]


class FakeInformer:
    def __init__(self, items: list[Obj]) -> None:
        self.items = items

    def add_handler(self, **_: Any) -> None:
        pass

    def list(self, namespace: str | None = None) -> list[Obj]:
        return [i for i in self.items if namespace in (None, i["metadata"]["namespace"])]


class FakeClient:
    """Just enough of the API for ControllerRevisions: create (409 on a taken name), get, merge patch, delete."""

    def __init__(self, stored: list[Obj]) -> None:
        self.stored = {r["metadata"]["name"]: r for r in stored}
        self.calls: list[tuple[str, str]] = []

    async def create(self, rt: Any, obj: Obj, namespace: str | None = None) -> Obj:
        name = obj["metadata"]["name"]
        self.calls.append(("create", name))
        if name in self.stored:
            raise already_exists(rt.plural, name)
        self.stored[name] = copy.deepcopy(obj)
        return obj

    async def get(self, rt: Any, name: str, namespace: str | None = None) -> Obj:
        if name not in self.stored:
            raise not_found(rt.plural, name)
        return self.stored[name]

    async def patch(self, rt: Any, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        self.calls.append(("patch", name))
        obj = self.stored[name]
        obj.update({k: v for k, v in patch.items() if k != "metadata"})
        obj["metadata"].update({k: v for k, v in (patch.get("metadata") or {}).items() if k != "resourceVersion"})
        return obj

    async def delete(self, rt: Any, name: str, namespace: str | None = None, **_: Any) -> Obj:
        self.calls.append(("delete", name))
        return self.stored.pop(name)


def history_over(items: list[Obj]) -> tuple[h.RevisionHistory, FakeClient]:
    client = FakeClient(items)
    shared: dict[str, Any] = {"controllerrevisions": FakeInformer(items)}
    return h.RevisionHistory(client, shared, "DaemonSet", lambda _r: None), client  # type: ignore[arg-type]


async def test_first_sync_creates_revision_one_owned_and_labelled() -> None:
    history, client = history_over([])
    result = await history.sync(owner())
    created = result.update
    hash_value = h.revision_hash(h.template_patch(owner()))
    assert created["metadata"]["name"] == f"web-{hash_value}" and created["revision"] == 1
    assert created["metadata"]["labels"] == {"app": "web", h.HASH_LABEL: hash_value}
    assert created["metadata"]["annotations"] == {"a": "b"}
    [ref] = created["metadata"]["ownerReferences"]
    assert ref["uid"] == "u-1" and ref["controller"] is True and ref["blockOwnerDeletion"] is True
    assert created["data"] == h.template_patch(owner()) and result.collision_count == 0
    assert client.calls == [("create", created["metadata"]["name"])]


async def test_a_taken_name_with_other_data_is_a_collision() -> None:
    data = h.template_patch(owner())
    squatter = revision(f"web-{h.revision_hash(data)}", 1, uid="someone-else")
    history, client = history_over([])
    client.stored[squatter["metadata"]["name"]] = squatter
    result = await history.sync(owner())
    assert result.collision_count == 1
    assert result.update["metadata"]["name"] == f"web-{h.revision_hash(data, 1)}"


async def test_a_taken_name_with_the_same_data_is_ours_already() -> None:
    data = h.template_patch(owner())
    mine = revision(f"web-{h.revision_hash(data)}", 1, data)
    history, client = history_over([])  # the informer has not seen it yet
    client.stored[mine["metadata"]["name"]] = mine
    result = await history.sync(owner())
    assert result.update is mine and result.collision_count == 0


async def test_rollback_reuses_the_old_revision_and_trim_keeps_used_ones() -> None:
    data = h.template_patch(owner())
    old = revision("web-old", 1, data)
    newer = [revision(f"web-n{i}", i) for i in (2, 3, 4)]
    history, client = history_over([old, *newer])
    result = await history.sync(owner(revisionHistoryLimit=1))
    assert result.update is old and old["revision"] == 5
    assert [r["metadata"]["name"] for r in result.all] == ["web-n2", "web-n3", "web-n4", "web-old"]
    assert ("create", "web-old") not in client.calls
    await history.trim(owner(revisionHistoryLimit=1), result.all,
                       lambda r: r is result.update or r["metadata"]["name"] == "web-n2")
    assert sorted(client.stored) == ["web-n2", "web-n4", "web-old"]


async def test_orphans_matching_the_selector_are_adopted() -> None:
    data = h.template_patch(owner())
    orphan = revision("web-orphan", 4, data, uid=None)
    stranger = revision("other-x", 1, uid=None)
    stranger["metadata"]["labels"] = {"app": "other"}
    history, _ = history_over([orphan, stranger])
    result = await history.sync(owner())
    assert result.update is orphan and orphan["revision"] == 4
    assert [r["uid"] for r in orphan["metadata"]["ownerReferences"]] == ["u-1"]
    assert stranger["metadata"]["ownerReferences"] == []
