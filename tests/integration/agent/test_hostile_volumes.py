"""A real agent refuses volume contents that would land outside the volume, as the kubelet does.

The hostile objects are written straight into the store, as an older API server
without validation would have kept them: the agent is the second line of
defence. The pod fails to mount (a `FailedMount` event with the reason) or the
container fails to be configured (`CreateContainerConfigError`), nothing is
written outside, and other containers keep running.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson

from controlplane.api import resources
from tests.helpers import eventually
from tests.integration.agent.conftest import NodeEnv, container_state, running

Obj = dict[str, Any]
BUSYBOX = "pyk8s.local/busybox:1"


async def _store_edit(env: NodeEnv, key: str, edit: Any) -> None:
    """Change a stored object behind the API's back (no validation), as an older server's data would be."""
    store = env.server.store
    assert store is not None
    kv = await store.get(key)
    obj = orjson.loads(kv.value)
    edit(obj)
    await store.update(key, orjson.dumps(obj), expected_mod_revision=kv.mod_revision)


def _any_exists(*paths: str) -> bool:
    return any(os.path.lexists(p) for p in paths)


async def _failed_mount(env: NodeEnv, pod: str, text: str) -> bool:
    return any(e["reason"] == "FailedMount" and text in e.get("message", "") for e in await env.events(pod))


async def test_configmap_keys_and_item_paths_that_escape_are_refused(node_env: NodeEnv) -> None:
    escape = f"/tmp/pyk8s-escape-{node_env.net.name}"
    client = node_env.client
    await client.create(resources.CONFIGMAPS, {"metadata": {"name": "evil"}, "data": {"ok": "1"}}, "default")
    await _store_edit(node_env, "/registry/configmaps/default/evil",
                      lambda cm: cm["data"].update({f"../../../../../../../../..{escape}": "boom"}))
    await client.create(resources.PODS, {
        "metadata": {"name": "evilkey"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "configMap": {"name": "evil"}}]}}, "default")
    # items[].path: the pod waits for a ConfigMap that is created only after its stored path was made hostile.
    await client.create(resources.PODS, {
        "metadata": {"name": "evilitem"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "configMap": {"name": "later", "items": [{"key": "k", "path": "k"}]}}]}},
        "default")
    await eventually(lambda: _failed_mount(node_env, "evilitem", 'configmap "later" not found'), timeout=30)

    def hostile_item(pod: Obj) -> None:
        pod["spec"]["volumes"][0]["configMap"]["items"][0]["path"] = f"../../../../../../../../..{escape}-item"
    await _store_edit(node_env, "/registry/pods/default/evilitem", hostile_item)
    await asyncio.sleep(1)
    await client.create(resources.CONFIGMAPS, {"metadata": {"name": "later"}, "data": {"k": "boom"}}, "default")

    await eventually(lambda: _failed_mount(node_env, "evilkey", "invalid path: must not contain '..'"), timeout=30)
    await eventually(lambda: _failed_mount(node_env, "evilitem", "invalid path: must not contain '..'"), timeout=30)
    events = [e["message"] for e in await node_env.events("evilkey") if e["reason"] == "FailedMount"]
    assert any(m.startswith('MountVolume.SetUp failed for volume "v" : invalid path') for m in events)
    for name in ("evilkey", "evilitem"):
        assert (await node_env.pod(name))["status"]["phase"] == "Pending"
    assert not await asyncio.to_thread(_any_exists, escape, f"{escape}-item")


async def test_a_subpath_through_a_planted_symlink_is_refused(node_env: NodeEnv) -> None:
    await node_env.client.create(resources.PODS, {
        "metadata": {"name": "subpath"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "initContainers": [{"name": "plant", "image": BUSYBOX, "command": [
                     "sh", "-c", "ln -s / /data/escape && mkdir -p /data/fine && echo inside > /data/fine/marker"],
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "containers": [
                     {"name": "escaper", "image": BUSYBOX, "command": ["sleep", "3600"],
                      "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "escape"}]},
                     {"name": "fine", "image": BUSYBOX, "command": ["sh", "-c", "cat /y/marker; sleep 3600"],
                      "env": [{"name": "DIR", "value": "fine"}],
                      "volumeMounts": [{"name": "data", "mountPath": "/y", "subPathExpr": "$(DIR)"}]}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}}, "default")

    def escaper_refused(pod: Obj) -> bool:
        waiting = container_state(pod, "escaper").get("state", {}).get("waiting", {})
        return waiting.get("reason") == "CreateContainerConfigError" and \
            "resolves outside the volume" in waiting.get("message", "")

    pod = await node_env.wait_pod("subpath", escaper_refused)
    assert "unable to provision SubPath `escape`" in container_state(pod, "escaper")["state"]["waiting"]["message"]
    await node_env.wait_pod("subpath", lambda p: "running" in container_state(p, "fine").get("state", {}))
    text = await node_env.client.pod_logs("subpath", "default", container="fine")
    assert text.strip() == "inside"
    assert not running(await node_env.pod("subpath"))
