"""ControllerRevision history, shared by the DaemonSet and StatefulSet controllers.

A set's history is the list of `apps/v1` ControllerRevisions it controls. Each
revision snapshots the pod template as the strategic merge patch that would
put it back: `{"spec": {"template": {..., "$patch": "replace"}}}` in `data`,
which is exactly what `kubectl rollout undo` sends to the set. A revision is
named `<set>-<hash>` (the hash of that patch, salted with the set's
`status.collisionCount`), carries the template's labels (so the set's selector
finds it) plus `controller-revision-hash: <hash>`, and has a `revision`
number. A template equal to an older revision's reuses that revision and
moves it to the top (`max + 1`) instead of creating a duplicate; history
beyond `spec.revisionHistoryLimit` (default 10) is deleted oldest first,
except revisions that live pods (or the set's status) still refer to.

The pure functions below decide; `RevisionHistory` reads the shared informer
and writes through the API.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer
from controlplane.controllers import stored
from controlplane.controllers.base import delete_if_present
from controlplane.controllers.deployment import template_hash

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
DEFAULT_HISTORY_LIMIT = 10
NAME_PREFIX_MAX = 223  # the set's part of a revision name, so that `<prefix>-<hash>` stays a valid name
MAX_COLLISIONS = 100  # a bound on renaming after hash collisions within one sync


def template_patch(owner: Obj) -> Obj:
    """The revision data of a set: a patch that replaces `spec.template` with the current one (keys sorted)."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    data: Obj = orjson.loads(orjson.dumps({"spec": {"template": template}}, option=orjson.OPT_SORT_KEYS))
    return data


def template_of(revision: Obj) -> Obj:
    """The pod template a revision snapshots (its patch without the directive)."""
    template = ((revision.get("data") or {}).get("spec") or {}).get("template") or {}
    return {k: copy.deepcopy(v) for k, v in template.items() if k != "$patch"}


def revision_hash(data: Obj, collision_count: int = 0) -> str:
    return template_hash(data, collision_count)


def revision_name(prefix: str, hash_value: str) -> str:
    return f"{prefix[:NAME_PREFIX_MAX]}-{hash_value}"


def number(revision: Obj) -> int:
    return int(revision.get("revision") or 0)


def hash_of(revision: Obj) -> str:
    return str(((revision.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL, ""))


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    """Oldest first: by revision number, then creation time, then name."""
    return sorted(revisions, key=lambda r: (number(r), r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"]["name"]))


def next_number(revisions: list[Obj]) -> int:
    return max((number(r) for r in revisions), default=0) + 1


def history_limit(owner: Obj) -> int:
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_HISTORY_LIMIT if limit is None else max(int(limit), 0)


@dataclass
class Plan:
    """What the current template needs: reuse `revision` as is, move it to `number`, or create one at `number`."""

    action: str  # "reuse" | "bump" | "create"
    number: int
    revision: Obj | None = None


def plan(revisions: list[Obj], data: Obj) -> Plan:
    """Match the current template's `data` against the history (sorted oldest first)."""
    equal = [r for r in revisions if r.get("data") == data]
    if not equal:
        return Plan("create", next_number(revisions))
    newest_equal = equal[-1]
    if newest_equal is revisions[-1]:
        return Plan("reuse", number(newest_equal), newest_equal)
    # A template rolled back to an older revision: that one becomes the newest.
    return Plan("bump", next_number(revisions), newest_equal)


def to_delete(revisions: list[Obj], limit: int, in_use: Callable[[Obj], bool]) -> list[Obj]:
    """The oldest revisions beyond `limit` among those nothing uses any more (revisions sorted oldest first)."""
    unused = [r for r in revisions if not in_use(r)]
    return unused[: max(len(unused) - limit, 0)]


@dataclass
class Revisions:
    """A set's history after a sync: the revision of its current template, all revisions, the collision count."""

    update: Obj
    all: list[Obj] = field(default_factory=list)
    collision_count: int = 0

    def named(self, name: str | None) -> Obj | None:
        return next((r for r in self.all if r["metadata"]["name"] == name), None) if name else None


class RevisionHistory:
    """The ControllerRevisions of one kind of set (DaemonSet or StatefulSet), through a shared informer."""

    def __init__(self, client: Client, shared: dict[str, Informer], kind: str,
                 on_change: Callable[[Obj], None]) -> None:
        self.client = client
        self.kind = kind
        self.informer = shared.setdefault(resources.CONTROLLERREVISIONS.plural,
                                          Informer(client, resources.CONTROLLERREVISIONS))
        self.informer.add_handler(on_add=on_change, on_update=lambda _o, n: on_change(n), on_delete=on_change)

    def owned(self, owner: Obj) -> list[Obj]:
        uid = owner["metadata"]["uid"]
        return sort_revisions([r for r in self.informer.list(owner["metadata"]["namespace"])
                               if (meta.controller_of(r) or {}).get("uid") == uid])

    async def _adopt_orphans(self, owner: Obj) -> list[Obj]:
        """Revisions without a controller that the set's selector matches become the set's (as upstream claims)."""
        selector = stored.selector((owner.get("spec") or {}).get("selector"))
        adopted = []
        for rev in self.informer.list(owner["metadata"]["namespace"]):
            md = rev["metadata"]
            if meta.controller_of(rev) or md.get("deletionTimestamp") or not selector.matches(md.get("labels")):
                continue
            refs = [*(md.get("ownerReferences") or []), meta.owner_reference(owner)]
            try:
                adopted.append(await self.client.patch(resources.CONTROLLERREVISIONS, md["name"], {"metadata": {
                    "ownerReferences": refs, "resourceVersion": md["resourceVersion"]}}, md["namespace"]))
            except StatusError as exc:
                if exc.code not in (404, 409):
                    raise
        return adopted

    async def sync(self, owner: Obj) -> Revisions:
        """Make sure the owner's current template has the newest revision; return the history."""
        revisions = self.owned(owner)
        if not owner["metadata"].get("deletionTimestamp"):
            adopted = await self._adopt_orphans(owner)
            if adopted:
                revisions = sort_revisions([*revisions, *adopted])
        collision_count = int((owner.get("status") or {}).get("collisionCount") or 0)
        data = template_patch(owner)
        decision = plan(revisions, data)
        if decision.action == "reuse" and decision.revision is not None:
            update = decision.revision
        elif decision.action == "bump" and decision.revision is not None:
            update = await self._renumber(decision.revision, decision.number)
        else:
            update, collision_count = await self._create(owner, data, decision.number, collision_count)
        known = [r for r in revisions if r["metadata"]["name"] != update["metadata"]["name"]]
        return Revisions(update, sort_revisions([*known, update]), collision_count)

    async def _renumber(self, revision: Obj, new_number: int) -> Obj:
        md = revision["metadata"]
        return await self.client.patch(resources.CONTROLLERREVISIONS, md["name"], {"revision": new_number},
                                       md["namespace"])

    async def _create(self, owner: Obj, data: Obj, new_number: int, collision_count: int) -> tuple[Obj, int]:
        md = owner["metadata"]
        template = (owner.get("spec") or {}).get("template") or {}
        for _ in range(MAX_COLLISIONS):
            hash_value = revision_hash(data, collision_count)
            name = revision_name(md["name"], hash_value)
            labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: hash_value}
            revision = {"metadata": {"name": name, "namespace": md["namespace"], "labels": labels,
                                     "annotations": dict(md.get("annotations") or {}),
                                     "ownerReferences": [meta.owner_reference(owner)]},
                        "data": data, "revision": new_number}
            try:
                return await self.client.create(resources.CONTROLLERREVISIONS, revision), collision_count
            except StatusError as exc:
                if exc.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(resources.CONTROLLERREVISIONS, name, md["namespace"])
            if existing.get("data") == data:
                return existing, collision_count  # ours already (the informer had not shown it yet)
            collision_count += 1  # another template under this name: salt the hash and try again
        raise RuntimeError(f"{self.kind} {md['namespace']}/{md['name']}: no free revision name after "
                           f"{MAX_COLLISIONS} hash collisions")

    async def trim(self, owner: Obj, revisions: list[Obj], in_use: Callable[[Obj], bool]) -> None:
        """Delete the oldest unused revisions beyond the owner's `revisionHistoryLimit`."""
        for revision in to_delete(revisions, history_limit(owner), in_use):
            await delete_if_present(self.client, resources.CONTROLLERREVISIONS, revision)
