"""ControllerRevision history of DaemonSets and StatefulSets, driven with the real kubectl.

The API server, scheduler and controller manager run in-process (the `cluster`
fixture of test_workloads, whose played kubelet marks bound pods Running and
Ready). What is checked is what a user sees: `kubectl rollout history` lists
the revisions, `--revision=N` shows a template, `kubectl rollout undo` brings
the previous template back without a duplicate revision, and the sets' status
and pod labels follow the revisions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controlplane.api import meta, resources
from controlplane.client import Client
from tests.helpers import eventually
from tests.integration.controllers.test_workloads import cluster, k, pods  # noqa: F401  (cluster: a fixture)

Obj = dict[str, Any]
HASH = "controller-revision-hash"


def workload(name: str, image: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": name}}, **spec,
        "template": {"metadata": {"labels": {"app": name, "tier": "test"}}, "spec": {
            "containers": [{"name": "c", "image": image}]}}}}


async def revisions(client: Client, owner: Obj) -> list[Obj]:
    items = (await client.list(resources.CONTROLLERREVISIONS, "default"))["items"]
    uid = owner["metadata"]["uid"]
    return sorted((r for r in items if (meta.controller_of(r) or {}).get("uid") == uid),
                  key=lambda r: int(r["revision"]))


async def pods_of(client: Client, app: str) -> list[Obj]:
    return [p for p in await pods(client) if (p["metadata"].get("labels") or {}).get("app") == app]


def image_of(obj: Obj) -> str:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


def history_rows(text: str) -> list[str]:
    """The REVISION column of `kubectl rollout history`."""
    return [line.split()[0] for line in text.splitlines()[1:] if line.strip() and line.split()[0].isdigit()]


async def test_daemonset_history_undo_and_status(cluster: Client, kubeconfig: Path) -> None:  # noqa: F811
    client = cluster
    ds = await client.create(resources.DAEMONSETS, workload("agent", "pyk8s.local/web:1"))
    await k(kubeconfig, "rollout", "status", "daemonset/agent", "--timeout=60s")

    [first] = await revisions(client, ds)
    hash1 = first["metadata"]["labels"][HASH]
    assert first["metadata"]["name"] == f"agent-{hash1}" and first["revision"] == 1
    assert first["metadata"]["labels"] == {"app": "agent", "tier": "test", HASH: hash1}
    [ref] = first["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == \
        ("DaemonSet", "agent", ds["metadata"]["uid"], True, True)
    template = first["data"]["spec"]["template"]
    assert list(first["data"]) == ["spec"] and list(first["data"]["spec"]) == ["template"]
    assert template["$patch"] == "replace" and template["spec"]["containers"][0]["image"] == "pyk8s.local/web:1"
    live = await pods_of(client, "agent")
    assert len(live) == 2 and all(p["metadata"]["labels"][HASH] == hash1 for p in live)
    assert all(p["metadata"]["labels"]["pod-template-generation"] == "1" for p in live)

    # Like upstream, a new revision keeps the set's annotations: that is where CHANGE-CAUSE comes from.
    await k(kubeconfig, "annotate", "daemonset/agent", "kubernetes.io/change-cause=web two")
    await k(kubeconfig, "set", "image", "daemonset/agent", "c=pyk8s.local/web:2")
    assert "successfully rolled out" in await k(kubeconfig, "rollout", "status", "daemonset/agent",
                                                "--timeout=60s")
    ds = await client.get(resources.DAEMONSETS, "agent", "default")
    status = ds["status"]
    assert status["observedGeneration"] == ds["metadata"]["generation"] == 2
    assert status["updatedNumberScheduled"] == status["desiredNumberScheduled"] == 2
    first_rev, second = await revisions(client, ds)
    hash2 = second["metadata"]["labels"][HASH]
    assert second["revision"] == 2 and hash2 != hash1
    live = await pods_of(client, "agent")
    assert {(image_of(p), p["metadata"]["labels"][HASH]) for p in live} == {("pyk8s.local/web:2", hash2)}
    assert all(p["metadata"]["labels"]["pod-template-generation"] == "2" for p in live)

    history = await k(kubeconfig, "rollout", "history", "daemonset/agent")
    assert history_rows(history) == ["1", "2"]
    assert [line.split(None, 1)[1] for line in history.splitlines()[2:4]] == ["<none>", "web two"]
    shown = await k(kubeconfig, "rollout", "history", "daemonset/agent", "--revision=1")
    assert "pyk8s.local/web:1" in shown and "pyk8s.local/web:2" not in shown

    assert "rolled back" in await k(kubeconfig, "rollout", "undo", "daemonset/agent")
    await k(kubeconfig, "rollout", "status", "daemonset/agent", "--timeout=60s")

    async def back_on_v1() -> bool:
        current = await pods_of(client, "agent")
        return len(current) == 2 and {(image_of(p), p["metadata"]["labels"][HASH]) for p in current} == {
            ("pyk8s.local/web:1", hash1)}

    await eventually(back_on_v1)
    ds = await client.get(resources.DAEMONSETS, "agent", "default")
    assert image_of(ds) == "pyk8s.local/web:1"
    # The old revision was reused and moved to the top: no duplicate of the first template.
    after = await revisions(client, ds)
    assert [(r["metadata"]["name"], r["revision"]) for r in after] == [
        (second["metadata"]["name"], 2), (first_rev["metadata"]["name"], 3)]
    assert history_rows(await k(kubeconfig, "rollout", "history", "daemonset/agent")) == ["2", "3"]

    await k(kubeconfig, "delete", "daemonset", "agent")

    async def history_gone() -> bool:
        items = (await client.list(resources.CONTROLLERREVISIONS, "default"))["items"]
        return not [r for r in items if r["metadata"]["name"].startswith("agent-")]

    await eventually(history_gone)


async def test_statefulset_history_undo_and_partition(cluster: Client, kubeconfig: Path) -> None:  # noqa: F811
    client = cluster
    sts = await client.create(resources.STATEFULSETS, workload("db", "pyk8s.local/web:1", replicas=2,
                                                                serviceName="db"))
    await k(kubeconfig, "rollout", "status", "statefulset/db", "--timeout=60s")
    [first] = await revisions(client, sts)
    name1 = first["metadata"]["name"]
    assert name1 == f"db-{first['metadata']['labels'][HASH]}" and first["revision"] == 1
    sts = await client.get(resources.STATEFULSETS, "db", "default")
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == name1
    assert {p["metadata"]["labels"][HASH] for p in await pods_of(client, "db")} == {name1}

    await k(kubeconfig, "set", "image", "statefulset/db", "c=pyk8s.local/web:2")
    await k(kubeconfig, "rollout", "status", "statefulset/db", "--timeout=60s")

    async def settled_on(name: str, replicas: int) -> bool:
        status = (await client.get(resources.STATEFULSETS, "db", "default")).get("status") or {}
        return (status.get("currentRevision") == status.get("updateRevision") == name
                and status.get("updatedReplicas") == status.get("currentReplicas") == replicas
                and status.get("readyReplicas") == replicas)

    _, second = await revisions(client, sts)
    name2 = second["metadata"]["name"]
    assert second["revision"] == 2 and name2 != name1
    await eventually(lambda: settled_on(name2, 2))
    assert {(image_of(p), p["metadata"]["labels"][HASH]) for p in await pods_of(client, "db")} == {
        ("pyk8s.local/web:2", name2)}

    assert history_rows(await k(kubeconfig, "rollout", "history", "statefulset/db")) == ["1", "2"]
    shown = await k(kubeconfig, "rollout", "history", "statefulset/db", "--revision=1")
    assert "pyk8s.local/web:1" in shown and "pyk8s.local/web:2" not in shown

    assert "rolled back" in await k(kubeconfig, "rollout", "undo", "statefulset/db")
    await k(kubeconfig, "rollout", "status", "statefulset/db", "--timeout=60s")
    await eventually(lambda: settled_on(name1, 2))
    assert {image_of(p) for p in await pods_of(client, "db")} == {"pyk8s.local/web:1"}
    assert [(r["metadata"]["name"], r["revision"]) for r in await revisions(client, sts)] == [
        (name2, 2), (name1, 3)]

    # A partition keeps the lower ordinals on the current revision, also when they are recreated.
    await k(kubeconfig, "patch", "statefulset", "db", "-p",
            json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}}}}))
    await k(kubeconfig, "set", "image", "statefulset/db", "c=pyk8s.local/web:3")
    third = None

    async def partitioned() -> bool:
        nonlocal third
        status = (await client.get(resources.STATEFULSETS, "db", "default")).get("status") or {}
        by_name = {p["metadata"]["name"]: p for p in await pods_of(client, "db")}
        third = status.get("updateRevision")
        return (status.get("currentRevision") == name1 and third not in (name1, name2)
                and status.get("currentReplicas") == 1 and status.get("updatedReplicas") == 1
                and set(by_name) == {"db-0", "db-1"} and image_of(by_name["db-1"]) == "pyk8s.local/web:3"
                and meta.is_pod_ready(by_name["db-1"]) and image_of(by_name["db-0"]) == "pyk8s.local/web:1")

    await eventually(partitioned)
    await k(kubeconfig, "delete", "pod", "db-0")

    async def db0_recreated_on_current() -> bool:
        db0 = [p for p in await pods_of(client, "db") if p["metadata"]["name"] == "db-0"]
        return bool(db0) and meta.is_pod_ready(db0[0]) and db0[0]["metadata"]["labels"][HASH] == name1 \
            and image_of(db0[0]) == "pyk8s.local/web:1"

    await eventually(db0_recreated_on_current)
    assert history_rows(await k(kubeconfig, "rollout", "history", "statefulset/db")) == ["2", "3", "4"]


async def test_history_is_limited_but_keeps_what_pods_use(cluster: Client, kubeconfig: Path) -> None:  # noqa: F811
    client = cluster
    ds = await client.create(resources.DAEMONSETS, workload("lim", "pyk8s.local/web:1", revisionHistoryLimit=1))
    await k(kubeconfig, "rollout", "status", "daemonset/lim", "--timeout=60s")
    for version in (2, 3, 4):
        await k(kubeconfig, "set", "image", "daemonset/lim", f"c=pyk8s.local/web:{version}")
        await k(kubeconfig, "rollout", "status", "daemonset/lim", "--timeout=60s")

    async def two_left() -> bool:
        return [r["revision"] for r in await revisions(client, ds)] == [3, 4]

    await eventually(two_left)
    assert history_rows(await k(kubeconfig, "rollout", "history", "daemonset/lim")) == ["3", "4"]

    # OnDelete: pods stay on their revision, so that revision outlives the limit.
    await k(kubeconfig, "patch", "daemonset", "lim", "-p", json.dumps(
        {"spec": {"revisionHistoryLimit": 0, "updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}}))
    await k(kubeconfig, "set", "image", "daemonset/lim", "c=pyk8s.local/web:5")
    used = {p["metadata"]["labels"][HASH] for p in await pods_of(client, "lim")}

    async def unused_gone() -> bool:
        return [r["revision"] for r in await revisions(client, ds)] == [4, 5]

    await eventually(unused_gone)
    kept = (await revisions(client, ds))[0]
    assert kept["metadata"]["labels"][HASH] in used
