"""The official `kubernetes` Python client against pyk8s: CRUD, watch, pagination, errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from kubernetes import client, config, watch


def api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(str(kubeconfig))


def _reason(exc: client.ApiException) -> str:
    return str(json.loads(exc.body)["reason"])


def crud_flow(kubeconfig: Path) -> None:
    with api(kubeconfig) as c:
        core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
        core.create_namespace({"metadata": {"name": "py"}})
        cm = core.create_namespaced_config_map("py", {"metadata": {"name": "cfg"}, "data": {"k": "1"}})
        cm.data["k"] = "2"
        updated = core.replace_namespaced_config_map("cfg", "py", cm)
        assert updated.data == {"k": "2"}
        cm.data["k"] = "3"  # cm still carries the old resourceVersion
        with pytest.raises(client.ApiException) as stale:
            core.replace_namespaced_config_map("cfg", "py", cm)
        assert stale.value.status == 409 and _reason(stale.value) == "Conflict"
        with pytest.raises(client.ApiException) as dup:
            core.create_namespaced_config_map("py", {"metadata": {"name": "cfg"}})
        assert dup.value.status == 409 and _reason(dup.value) == "AlreadyExists"
        with pytest.raises(client.ApiException) as ghost:  # PUT does not create a ConfigMap (upstream)
            core.replace_namespaced_config_map("ghost", "py", {"metadata": {"name": "ghost"}})
        assert ghost.value.status == 404
        with pytest.raises(client.ApiException) as missing:
            core.read_namespaced_secret("nope", "py")
        assert missing.value.status == 404 and _reason(missing.value) == "NotFound"
        with pytest.raises(client.ApiException) as bad:
            core.create_namespaced_service("py", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 70000}]}})
        assert bad.value.status == 422 and _reason(bad.value) == "Invalid"
        assert json.loads(bad.value.body)["details"]["causes"][0]["field"] == "spec.ports[0].port"

        deploy = apps.create_namespaced_deployment("py", {
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}})
        assert deploy.spec.replicas == 1 and deploy.spec.strategy.rolling_update.max_surge == "25%"
        scaled = apps.patch_namespaced_deployment_scale("d", "py", {"spec": {"replicas": 3}})
        assert scaled.spec.replicas == 3
        status = apps.read_namespaced_deployment_status("d", "py")
        status.status.replicas = 7
        apps.replace_namespaced_deployment_status("d", "py", status)
        again = apps.read_namespaced_deployment("d", "py")
        assert again.status.replicas == 7 and again.spec.replicas == 3 and again.metadata.generation == 2

        for i in range(7):
            core.create_namespaced_config_map("py", {"metadata": {"name": f"p{i}", "labels": {"page": "yes"}}})
        names, token = [], None
        while True:
            page = core.list_namespaced_config_map("py", label_selector="page=yes", limit=3, _continue=token)
            names += [i.metadata.name for i in page.items]
            token = page.metadata._continue
            if not token:
                break
        assert names == [f"p{i}" for i in range(7)]

        pod = core.create_namespaced_pod("py", {"metadata": {"name": "pod"}, "spec": {
            "containers": [{"name": "c", "image": "busybox"}]}})
        assert pod.spec.restart_policy == "Always" and pod.status.phase == "Pending"
        core.create_namespaced_pod_binding("pod", "py", {"metadata": {"name": "pod"},
                                                         "target": {"kind": "Node", "name": "n1"}},
                                           _preload_content=False)
        assert core.read_namespaced_pod("pod", "py").spec.node_name == "n1"
        core.delete_namespaced_pod("pod", "py")  # bound: graceful, stays until the kubelet confirms
        terminating = core.read_namespaced_pod("pod", "py")
        assert terminating.metadata.deletion_timestamp is not None
        core.delete_namespaced_pod("pod", "py", grace_period_seconds=0)
        with pytest.raises(client.ApiException):
            core.read_namespaced_pod("pod", "py")


def watch_flow(kubeconfig: Path) -> list[tuple[str, str]]:
    with api(kubeconfig) as c:
        core = client.CoreV1Api(c)
        core.create_namespaced_config_map("default", {"metadata": {"name": "w1"}})
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        core.patch_namespaced_config_map("w1", "default", {"data": {"x": "1"}})
        core.delete_namespaced_config_map("w1", "default")
        seen = []
        for event in watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                          timeout_seconds=2):
            seen.append((event["type"], event["object"].metadata.name))
        return seen


async def test_crud_pagination_and_errors(kubeconfig: Path) -> None:
    await asyncio.to_thread(crud_flow, kubeconfig)


async def test_watch_stream_from_resource_version(kubeconfig: Path) -> None:
    seen = await asyncio.to_thread(watch_flow, kubeconfig)
    assert seen == [("MODIFIED", "w1"), ("DELETED", "w1")]
