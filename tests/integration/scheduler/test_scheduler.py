"""The scheduler against the real API server: binding, spreading, Unschedulable and retry."""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.api import resources
from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from controlplane.scheduler.scheduler import Scheduler
from tests.helpers import eventually


def node(name: str, cpu: str = "2") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                       "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "100m") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "i:1", "resources": {"requests": {"cpu": cpu}}}]}}


async def create_node(client: Client, body: dict[str, Any]) -> None:
    created = await client.create(resources.NODES, {"metadata": body["metadata"]})
    created["status"] = body["status"]
    await client.update(resources.NODES, created, subresource="status")


async def test_binds_spreads_and_retries_unschedulable(api_server: APIServer) -> None:
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await create_node(client, node("n1"))
        await create_node(client, node("n2"))
        task = asyncio.create_task(Scheduler(client).run(stop))
        try:
            for i in range(4):
                await client.create(resources.PODS, pod(f"p{i}"))

            async def all_bound() -> bool:
                pods = (await client.list(resources.PODS, "default"))["items"]
                return len(pods) == 4 and all(p["spec"].get("nodeName") for p in pods)

            await eventually(all_bound)
            placement = [p["spec"]["nodeName"] for p in (await client.list(resources.PODS, "default"))["items"]]
            assert sorted(placement) == ["n1", "n1", "n2", "n2"]  # spread across the two nodes
            scheduled = await client.get(resources.PODS, "p0", "default")
            assert {"type": "PodScheduled", "status": "True"}.items() <= next(
                c for c in scheduled["status"]["conditions"] if c["type"] == "PodScheduled").items()

            await client.create(resources.PODS, pod("huge", cpu="3"))

            async def rejected() -> bool:
                conds = (await client.get(resources.PODS, "huge", "default"))["status"].get("conditions") or []
                return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conds)

            await eventually(rejected)
            huge = await client.get(resources.PODS, "huge", "default")
            cond = next(c for c in huge["status"]["conditions"] if c["type"] == "PodScheduled")
            assert cond["reason"] == "Unschedulable"
            assert cond["message"].startswith("0/2 nodes are available: 2 Insufficient cpu.")
            events = await client.list(resources.EVENTS, "default", field_selector="involvedObject.name=huge")
            assert any(e["reason"] == "FailedScheduling" for e in events["items"])

            await create_node(client, node("big", cpu="8"))

            async def bound_to_big() -> bool:
                return (await client.get(resources.PODS, "huge", "default"))["spec"].get("nodeName") == "big"

            await eventually(bound_to_big)
        finally:
            stop.set()
            await task


async def _bound_to(client: Client, name: str) -> str | None:
    return (await client.get(resources.PODS, name, "default"))["spec"].get("nodeName")


async def _bound_to_node(client: Client, name: str, node_name: str) -> bool:
    return await _bound_to(client, name) == node_name


async def _rejected(client: Client, name: str) -> bool:
    conds = (await client.get(resources.PODS, name, "default"))["status"].get("conditions") or []
    return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conds)


async def test_failed_binding_forgets_the_assumed_pod_and_retries(api_server: APIServer) -> None:
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await create_node(client, node("only", cpu="1"))
        scheduler = Scheduler(client)
        real_bind, failures = client.create_subresource, list[Any]()

        async def flaky_bind(*args: Any, **kwargs: Any) -> Any:
            if not failures:
                failures.append(args)
                raise OSError("connection reset while binding")
            return await real_bind(*args, **kwargs)

        client.create_subresource = flaky_bind  # type: ignore[method-assign]
        task = asyncio.create_task(scheduler.run(stop))
        try:
            await client.create(resources.PODS, pod("a", cpu="1"))

            await eventually(lambda: _bound_to_node(client, "a", "only"))
            assert len(failures) == 1
            info = scheduler.cache.nodes["only"]
            assert (list(info.pods), info.cpu) == (["default/a"], 1000)  # counted once
            assert not scheduler.cache.assumed
            await client.create(resources.PODS, pod("b", cpu="1"))  # the node is full for real
            await eventually(lambda: _rejected(client, "b"))
        finally:
            stop.set()
            await task


async def test_pod_deleted_while_binding_frees_its_node(api_server: APIServer) -> None:
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await create_node(client, node("only", cpu="1"))
        scheduler = Scheduler(client)
        real_bind, deleted = client.create_subresource, []

        async def delete_then_bind(rt: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            if name == "doomed":
                assert scheduler.cache.is_assumed("default/doomed")
                await client.delete(resources.PODS, "doomed", "default")
                deleted.append(name)
            return await real_bind(rt, name, *args, **kwargs)

        client.create_subresource = delete_then_bind  # type: ignore[method-assign]
        task = asyncio.create_task(scheduler.run(stop))
        try:
            await client.create(resources.PODS, pod("doomed", cpu="1"))

            async def gone() -> bool:
                return bool(deleted) and "default/doomed" not in scheduler.cache.where and \
                    not scheduler.cache.assumed

            await eventually(gone)
            assert scheduler.cache.nodes["only"].cpu == 0
            await client.create(resources.PODS, pod("next", cpu="1"))  # fits: nothing leaked
            await eventually(lambda: _bound_to_node(client, "next", "only"))
        finally:
            stop.set()
            await task


async def test_affinity_namespace_selector_follows_namespace_labels(api_server: APIServer) -> None:
    """A pod whose affinity looks for its db pod in namespaces labelled env=prod waits until the db's
    namespace carries that label, then goes next to it."""
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await create_node(client, node("n1"))
        await create_node(client, node("n2"))
        await client.create(resources.NAMESPACES, {"metadata": {"name": "shop"}})
        db = pod("db")
        db["metadata"].update(namespace="shop", labels={"app": "db"})
        db["spec"]["nodeName"] = "n2"
        await client.create(resources.PODS, db)
        web = pod("web")
        web["spec"]["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname",
             "namespaceSelector": {"matchLabels": {"env": "prod"}}}]}}
        task = asyncio.create_task(Scheduler(client).run(stop))
        try:
            await client.create(resources.PODS, web)
            await eventually(lambda: _rejected(client, "web"))
            assert await _bound_to(client, "web") is None
            await client.patch(resources.NAMESPACES, "shop", {"metadata": {"labels": {"env": "prod"}}})
            await eventually(lambda: _bound_to_node(client, "web", "n2"))  # beside the db pod
        finally:
            stop.set()
            await task
