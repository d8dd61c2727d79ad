"""The API server keeps a DaemonSet's template generation, which its pods carry as `pod-template-generation`."""

from __future__ import annotations

from typing import Any

from controlplane.api import resources
from controlplane.apiserver.server import APIServer
from controlplane.client import Client

KEY = "deprecated.daemonset.template.generation"


def daemonset(image: str) -> dict[str, Any]:
    return {"metadata": {"name": "agentd", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "agentd"}},
        "template": {"metadata": {"labels": {"app": "agentd"}},
                     "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def test_template_generation_follows_template_changes_only(api_server: APIServer) -> None:
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        created = await client.create(resources.DAEMONSETS, daemonset("a:1"))
        assert created["metadata"]["annotations"][KEY] == "1"

        created["spec"]["minReadySeconds"] = 5  # a spec change outside the template
        updated = await client.update(resources.DAEMONSETS, created)
        assert updated["metadata"]["generation"] == 2 and updated["metadata"]["annotations"][KEY] == "1"

        updated["spec"]["template"]["spec"]["containers"][0]["image"] = "a:2"
        updated["metadata"]["annotations"] = {}  # server-owned: a client cannot drop or reset it
        rolled = await client.update(resources.DAEMONSETS, updated)
        assert rolled["metadata"]["generation"] == 3 and rolled["metadata"]["annotations"][KEY] == "2"

        rolled["metadata"]["annotations"][KEY] = "7"
        kept = await client.update(resources.DAEMONSETS, rolled)
        assert kept["metadata"]["annotations"][KEY] == "2"
