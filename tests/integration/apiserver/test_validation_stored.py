"""Absurd integers already in the store (written before the API checked widths) do not drive controllers.

A ReplicaSet and a Deployment whose `replicas` no Go struct could hold are put
straight into the store, as an older server would have left them. The real
controllers must neither create pods for them nor crash on them (nor on a
stored selector with an operator that does not exist): a valid ReplicaSet
created afterwards still gets its pod.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controlplane.api import meta, resources
from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from controlplane.controllers import stored
from controlplane.controllers.manager import run_controller_manager
from tests.helpers import eventually


def _template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}


async def _put_raw(api: APIServer, rt: resources.ResourceType, name: str, spec: dict[str, Any]) -> None:
    obj = {"apiVersion": rt.api_version, "kind": rt.kind, "spec": spec,
           "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4()), "generation": 1,
                        "creationTimestamp": meta.now_rfc3339()}}
    assert api.store is not None
    # The stdlib encoder, as an older server or a direct write: it takes integers of any size.
    await api.store.create(rt.storage_key("default", name), json.dumps(obj).encode())


@pytest.fixture
async def controllers(api_server: APIServer) -> AsyncIterator[Client]:
    stop = asyncio.Event()
    client = Client.from_kubeconfig(api_server.admin_kubeconfig)
    task = asyncio.create_task(run_controller_manager(client, stop=stop, enabled=("replicaset", "deployment")))
    try:
        yield client
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()


async def test_stored_replicas_beyond_int32_create_nothing(api_server: APIServer, controllers: Client) -> None:
    for name, replicas in (("huge", 2 ** 63), ("wider", 2 ** 64), ("frac", 2.5)):
        await _put_raw(api_server, resources.REPLICASETS, name, {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": _template(name)})
    await _put_raw(api_server, resources.REPLICASETS, "badsel", {
        "replicas": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]},
        "template": _template("badsel")})
    await _put_raw(api_server, resources.DEPLOYMENTS, "dhuge", {
        "replicas": 2 ** 40, "selector": {"matchLabels": {"app": "dhuge"}}, "template": _template("dhuge")})
    await controllers.create(resources.REPLICASETS, {
        "metadata": {"name": "fine", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fine"}}, "template": _template("fine")}})

    async def fine_has_its_pod() -> bool:
        pods = (await controllers.list(resources.PODS, "default"))["items"]
        return any((p["metadata"].get("labels") or {}).get("app") == "fine" for p in pods)

    await eventually(fine_has_its_pod, timeout=20)
    await asyncio.sleep(1.0)  # a few more syncs of the absurd ones
    pods = (await controllers.list(resources.PODS, "default"))["items"]
    assert {(p["metadata"].get("labels") or {}).get("app") for p in pods} == {"fine"}
    sets = (await controllers.list(resources.REPLICASETS, "default"))["items"]
    assert sorted(s["metadata"]["name"] for s in sets) == ["badsel", "fine", "frac", "huge", "wider"]


def test_bad_integers_names_every_field_out_of_range() -> None:
    spec = {"replicas": 2 ** 31, "parallelism": -1, "completions": 3, "backoffLimit": True, "x": 2 ** 70,
            "minReadySeconds": "3", "activeDeadlineSeconds": 2 ** 40}
    fields = {"replicas": stored.INT32, "parallelism": stored.INT32, "completions": stored.INT32,
              "backoffLimit": stored.INT32, "minReadySeconds": stored.INT32, "activeDeadlineSeconds": stored.INT64,
              "unset": stored.INT32}
    assert stored.bad_integers(spec, fields) == ["replicas", "parallelism", "backoffLimit", "minReadySeconds"]
    assert not stored.refuse({"kind": "Job"}, {"replicas": 0}, fields)
