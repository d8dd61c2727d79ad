"""TokenRequest: the API server signs service-account tokens and accepts them while the account lives."""

from __future__ import annotations

import pytest

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer
from controlplane.client import Client


async def test_token_request_and_authentication(api_server: APIServer) -> None:
    ca = (api_server.config.data_dir / "pki" / "ca.crt").read_bytes()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as admin:
        await admin.create(resources.SERVICEACCOUNTS, {"metadata": {"name": "robot", "namespace": "default"}})
        reply = await admin.create_subresource(resources.SERVICEACCOUNTS, "robot", "token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": ["https://kubernetes.default.svc.cluster.local"], "expirationSeconds": 3600}},
            "default")
        assert reply["kind"] == "TokenRequest" and reply["status"]["expirationTimestamp"]
        token = reply["status"]["token"]
        async with Client(api_server.url, token=token, ca_data=ca) as robot:
            listed = await robot.list(resources.CONFIGMAPS, "default")
            assert listed["kind"] == "ConfigMapList"
            with pytest.raises(StatusError) as short:
                await admin.create_subresource(resources.SERVICEACCOUNTS, "robot", "token",
                                               {"spec": {"expirationSeconds": 60}}, "default")
            assert short.value.code == 422
            await admin.delete(resources.SERVICEACCOUNTS, "robot", "default")
            with pytest.raises(StatusError) as revoked:
                await robot.list(resources.CONFIGMAPS, "default")
            assert revoked.value.code == 401 and revoked.value.reason == "Unauthorized"
        async with Client(api_server.url, token=token[:-4] + "AAAA", ca_data=ca) as forged:
            with pytest.raises(StatusError) as bad:
                await forged.list(resources.CONFIGMAPS, "default")
            assert bad.value.code == 401
