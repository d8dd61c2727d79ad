"""The root CA publisher and Go-bool field selectors, against the real API server."""

from __future__ import annotations

import asyncio

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer
from controlplane.client import Client, Informer
from controlplane.controllers.rootca import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    ROOT_CA_CONFIGMAP,
    RootCAPublisher,
)
from tests.helpers import eventually


async def test_every_namespace_gets_the_root_ca_and_keeps_it(api_server: APIServer) -> None:
    assert api_server.pki is not None
    ca = api_server.pki.ca_cert.read_bytes()
    stop = asyncio.Event()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        shared: dict[str, Informer] = {}
        task = asyncio.create_task(RootCAPublisher(client, shared, client.ca_data or b"").run(stop))
        try:
            await client.create(resources.NAMESPACES, {"metadata": {"name": "fresh"}})

            async def published(namespace: str) -> bool:
                try:
                    cm = await client.get(resources.CONFIGMAPS, ROOT_CA_CONFIGMAP, namespace)
                except StatusError:
                    return False
                return cm["data"] == {"ca.crt": ca.decode()} and \
                    cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION

            for namespace in ("default", "kube-system", "fresh"):
                await eventually(lambda ns=namespace: published(ns))  # type: ignore[misc]
            # Tampered with: put back. Deleted: made again.
            cm = await client.get(resources.CONFIGMAPS, ROOT_CA_CONFIGMAP, "fresh")
            cm["data"] = {"ca.crt": "not a CA"}
            await client.update(resources.CONFIGMAPS, cm)
            await eventually(lambda: published("fresh"))
            await client.delete(resources.CONFIGMAPS, ROOT_CA_CONFIGMAP, "fresh")
            await eventually(lambda: published("fresh"))
            # Only that one ConfigMap is the publisher's business.
            await client.create(resources.CONFIGMAPS, {"metadata": {"name": "other", "namespace": "fresh"},
                                                       "data": {"a": "b"}})
            await asyncio.sleep(0.5)
            assert (await client.get(resources.CONFIGMAPS, "other", "fresh"))["data"] == {"a": "b"}
        finally:
            stop.set()
            await task


async def test_a_node_without_unschedulable_selects_as_false(api_server: APIServer) -> None:
    """e2e's framework lists schedulable nodes with `spec.unschedulable=false`; Go writes false for a bool left out."""
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        await client.create(resources.NODES, {"metadata": {"name": "plain"}})
        await client.create(resources.NODES, {"metadata": {"name": "cordoned"}, "spec": {"unschedulable": True}})
        schedulable = await client.list(resources.NODES, field_selector="spec.unschedulable=false")
        assert [n["metadata"]["name"] for n in schedulable["items"]] == ["plain"]
        cordoned = await client.list(resources.NODES, field_selector="spec.unschedulable!=false")
        assert [n["metadata"]["name"] for n in cordoned["items"]] == ["cordoned"]
        await client.create(resources.PODS, {"metadata": {"name": "p", "namespace": "default"}, "spec": {
            "containers": [{"name": "c", "image": "i:1"}]}})
        pods = await client.list(resources.PODS, "default", field_selector="spec.hostNetwork=false")
        assert [p["metadata"]["name"] for p in pods["items"]] == ["p"]
