"""A running agent's data dir is root's alone, and its log holds no credential.

Upstream's volume files keep their modes (0644 by default, for the pods'
users), but the data dir above them is 0700 and the kubelet's keys 0600, so no
other local user reaches a Secret's volume, a pod's log or a key. The agent
runs with the admin kubeconfig here: its token must not appear in the log.
"""

from __future__ import annotations

import asyncio
import base64
import stat
from pathlib import Path

from controlplane.api import resources
from tests.integration.agent.conftest import NodeEnv, running

BUSYBOX = "pyk8s.local/busybox:1"


def _modes(data_dir: Path) -> dict[str, int]:
    paths = [data_dir, data_dir / "pki", *(data_dir / "pki").iterdir()]
    return {str(p): stat.S_IMODE(p.lstat().st_mode) for p in paths}


async def test_the_data_dir_is_private_and_the_log_holds_no_token(node_env: NodeEnv) -> None:
    client = node_env.client
    await client.create(resources.SECRETS, {"metadata": {"name": "pw"},
                                            "data": {"password": base64.b64encode(b"hunter2").decode()}}, "default")
    await client.create(resources.PODS, {
        "metadata": {"name": "withsecret"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "c", "image": BUSYBOX, "command": ["sh", "-c", "cat /s/password; sleep 3600"],
            "volumeMounts": [{"name": "s", "mountPath": "/s"}]}],
            "volumes": [{"name": "s", "secret": {"secretName": "pw"}}]}}, "default")
    await node_env.wait_pod("withsecret", running)
    modes = await asyncio.to_thread(_modes, node_env.data_dir)
    assert modes.pop(str(node_env.data_dir)) == 0o700
    assert modes.pop(str(node_env.data_dir / "pki")) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes
    log = node_env.agent_log()
    assert node_env.server.token and node_env.server.token not in log
    assert "PRIVATE KEY" not in log and "hunter2" not in log
