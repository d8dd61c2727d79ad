"""Namespace lifecycle and node IPAM, against the real API server."""

from __future__ import annotations

import asyncio

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from controlplane.controllers.namespace import NamespaceController
from controlplane.controllers.nodeipam import NodeIPAMController
from tests.helpers import eventually


async def test_deleting_a_namespace_removes_its_content_then_itself(api_server: APIServer) -> None:
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        task = asyncio.create_task(NamespaceController(client).run(stop))
        try:
            await client.create(resources.NAMESPACES, {"metadata": {"name": "doomed"}})
            await client.create(resources.CONFIGMAPS, {"metadata": {"name": "c", "namespace": "doomed"}})
            await client.create(resources.PODS, {"metadata": {"name": "p", "namespace": "doomed"}, "spec": {
                "nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]}})
            await client.delete(resources.NAMESPACES, "doomed")
            ns = await client.get(resources.NAMESPACES, "doomed")
            assert ns["status"]["phase"] == "Terminating"
            with_grace = await client.get(resources.PODS, "p", "doomed")
            # The bound pod waits for its kubelet; play the kubelet and confirm termination.
            await eventually(lambda: _terminating(client, "p"))
            assert with_grace["metadata"]["name"] == "p"
            await client.delete(resources.PODS, "p", "doomed", grace_period_seconds=0)

            async def gone() -> bool:
                try:
                    await client.get(resources.NAMESPACES, "doomed")
                    return False
                except StatusError as exc:
                    return exc.code == 404

            await eventually(gone)
            listed = await client.list(resources.CONFIGMAPS, "doomed")
            assert listed["items"] == []
        finally:
            stop.set()
            await task


async def _terminating(client: Client, name: str) -> bool:
    pod = await client.get(resources.PODS, name, "doomed")
    return bool(pod["metadata"].get("deletionTimestamp"))


async def test_node_ipam_gives_distinct_cidrs_and_reuses_freed_ones(api_server: APIServer) -> None:
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        task = asyncio.create_task(NodeIPAMController(client, "10.244.0.0/16").run(stop))
        try:
            for name in ("n1", "n2", "n3"):
                await client.create(resources.NODES, {"metadata": {"name": name}})

            async def all_allocated() -> bool:
                nodes = (await client.list(resources.NODES))["items"]
                return len(nodes) == 3 and all(n.get("spec", {}).get("podCIDR") for n in nodes)

            await eventually(all_allocated)
            nodes = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in (await client.list(resources.NODES))["items"]}
            assert len(set(nodes.values())) == 3
            assert all(c.startswith("10.244.") and c.endswith("/24") for c in nodes.values())
            freed = nodes["n2"]
            await client.delete(resources.NODES, "n2")
            await client.create(resources.NODES, {"metadata": {"name": "n4"}})

            async def n4_allocated() -> bool:
                return bool((await client.get(resources.NODES, "n4")).get("spec", {}).get("podCIDR"))

            await eventually(n4_allocated)
            assert (await client.get(resources.NODES, "n4"))["spec"]["podCIDR"] == freed
        finally:
            stop.set()
            await task
