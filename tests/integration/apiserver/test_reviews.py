"""The review APIs: who a token names, what a caller may do; kubectl auth whoami and can-i."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from tests.conftest import kubectl

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
TOKEN_REVIEWS = resources.lookup("authentication.k8s.io", "v1", "tokenreviews")
SELF_REVIEWS = resources.lookup("authentication.k8s.io", "v1", "selfsubjectreviews")
ACCESS_REVIEWS = resources.lookup("authorization.k8s.io", "v1", "subjectaccessreviews")
SELF_ACCESS_REVIEWS = resources.lookup("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
LOCAL_ACCESS_REVIEWS = resources.lookup("authorization.k8s.io", "v1", "localsubjectaccessreviews")
RULES_REVIEWS = resources.lookup("authorization.k8s.io", "v1", "selfsubjectrulesreviews")


def review(rt: resources.ResourceType | None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    assert rt is not None
    body: dict[str, Any] = {"apiVersion": rt.api_version, "kind": rt.kind}
    if spec is not None:
        body["spec"] = spec
    return body


async def token_for(admin: Client, account: str, audiences: list[str], pod: dict[str, Any] | None = None) -> str:
    spec: dict[str, Any] = {"audiences": audiences}
    if pod is not None:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]}
    reply = await admin.create_subresource(resources.SERVICEACCOUNTS, account, "token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}, "default")
    return str(reply["status"]["token"])


async def test_token_review_and_whoami(api_server: APIServer) -> None:
    assert TOKEN_REVIEWS and SELF_REVIEWS
    ca = (api_server.config.data_dir / "pki" / "ca.crt").read_bytes()
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as admin:
        me = await admin.create(SELF_REVIEWS, review(SELF_REVIEWS))
        assert me["status"]["userInfo"] == {"username": "admin", "uid": "admin",
                                            "groups": ["system:masters", "system:authenticated"]}
        account = await admin.create(resources.SERVICEACCOUNTS, {"metadata": {"name": "robot"}}, "default")
        token = await token_for(admin, "robot", [API_AUDIENCE])
        answer = await admin.create(TOKEN_REVIEWS, review(TOKEN_REVIEWS, {"token": token}))
        assert answer["status"]["authenticated"] is True
        user = answer["status"]["user"]
        assert user["username"] == "system:serviceaccount:default:robot"
        assert user["uid"] == account["metadata"]["uid"]
        assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                                  "system:authenticated"]
        assert user["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
        async with Client(api_server.url, token=token, ca_data=ca) as robot:
            whoami = await robot.create(SELF_REVIEWS, review(SELF_REVIEWS))
            assert whoami["status"]["userInfo"] == user

        # a token for another audience is checked for that audience, and refused by the API server itself
        vault = await token_for(admin, "robot", ["vault"])
        for_vault = await admin.create(TOKEN_REVIEWS, review(TOKEN_REVIEWS, {"token": vault, "audiences": ["vault"]}))
        assert for_vault["status"]["authenticated"] is True and for_vault["status"]["audiences"] == ["vault"]
        for_api = await admin.create(TOKEN_REVIEWS, review(TOKEN_REVIEWS, {"token": vault}))
        assert for_api["status"]["authenticated"] is False and for_api["status"]["error"]
        async with Client(api_server.url, token=vault, ca_data=ca) as misused:
            with pytest.raises(StatusError) as refused:
                await misused.list(resources.CONFIGMAPS, "default")
            assert refused.value.code == 401

        # a pod-bound token names the pod, and dies with it
        pod = await admin.create(resources.PODS, {"metadata": {"name": "holder"}, "spec": {
            "serviceAccountName": "robot", "containers": [{"name": "c", "image": "pyk8s.local/busybox:1"}]}},
            "default")
        bound = await token_for(admin, "robot", [API_AUDIENCE], pod)
        async with Client(api_server.url, token=bound, ca_data=ca) as in_pod:
            extra = (await in_pod.create(SELF_REVIEWS, review(SELF_REVIEWS)))["status"]["userInfo"]["extra"]
            assert extra["authentication.kubernetes.io/pod-name"] == ["holder"]
            assert extra["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
            await admin.delete(resources.PODS, "holder", "default", grace_period_seconds=0)
            with pytest.raises(StatusError) as gone:
                await in_pod.list(resources.CONFIGMAPS, "default")
            assert gone.value.code == 401

        nothing = await admin.create(TOKEN_REVIEWS, review(TOKEN_REVIEWS, {"token": "not-a-token"}))
        assert nothing["status"]["authenticated"] is False
        with pytest.raises(StatusError) as not_listed:
            await admin.list(TOKEN_REVIEWS)
        assert not_listed.value.code == 405


async def test_access_reviews_allow_and_validate_like_upstream(api_server: APIServer) -> None:
    assert ACCESS_REVIEWS and SELF_ACCESS_REVIEWS and LOCAL_ACCESS_REVIEWS and RULES_REVIEWS
    pods = {"namespace": "default", "verb": "create", "resource": "pods"}
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as admin:
        mine = await admin.create(SELF_ACCESS_REVIEWS, review(SELF_ACCESS_REVIEWS, {"resourceAttributes": pods}))
        assert mine["status"] == {"allowed": True} and mine["spec"]["resourceAttributes"] == pods
        theirs = await admin.create(ACCESS_REVIEWS, review(ACCESS_REVIEWS, {
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"}, "user": "jane"}))
        assert theirs["status"]["allowed"] is True

        with pytest.raises(StatusError) as no_user:
            await admin.create(ACCESS_REVIEWS, review(ACCESS_REVIEWS, {"resourceAttributes": pods}))
        assert no_user.value.code == 422 and no_user.value.reason == "Invalid"
        assert "spec.user: Invalid value: \"\": at least one of user or group must be specified" in \
            no_user.value.message
        with pytest.raises(StatusError) as neither:
            await admin.create(SELF_ACCESS_REVIEWS, review(SELF_ACCESS_REVIEWS, {}))
        assert "exactly one of nonResourceAttributes or resourceAttributes must be specified" in \
            neither.value.message
        with pytest.raises(StatusError) as both:
            await admin.create(SELF_ACCESS_REVIEWS, review(SELF_ACCESS_REVIEWS, {
                "resourceAttributes": pods, "nonResourceAttributes": {"path": "/", "verb": "get"}}))
        assert "cannot be specified in combination with resourceAttributes" in both.value.message

        local = await admin.create(LOCAL_ACCESS_REVIEWS, review(LOCAL_ACCESS_REVIEWS, {
            "resourceAttributes": pods, "groups": ["team"]}), "default")
        assert local["status"]["allowed"] is True and local["metadata"]["namespace"] == "default"
        with pytest.raises(StatusError) as elsewhere:
            await admin.create(LOCAL_ACCESS_REVIEWS, review(LOCAL_ACCESS_REVIEWS, {
                "resourceAttributes": {**pods, "namespace": "kube-system"}, "groups": ["team"]}), "default")
        assert elsewhere.value.code == 422 and "must match metadata.namespace" in elsewhere.value.message

        rules = await admin.create(RULES_REVIEWS, review(RULES_REVIEWS, {"namespace": "default"}))
        assert rules["status"]["resourceRules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        assert rules["status"]["incomplete"] is False
        with pytest.raises(StatusError) as no_namespace:
            await admin.create(RULES_REVIEWS, review(RULES_REVIEWS, {}))
        assert no_namespace.value.code == 400 and no_namespace.value.message == "no namespace on request"


async def test_kubectl_auth_whoami_and_can_i(api_server: APIServer) -> None:
    kubeconfig = api_server.admin_kubeconfig
    can = await asyncio.to_thread(kubectl, kubeconfig, "auth", "can-i", "delete", "deployments", "-n", "default")
    assert can.stdout.strip() == "yes" and can.stderr == ""
    listed = await asyncio.to_thread(kubectl, kubeconfig, "auth", "can-i", "--list")
    assert listed.stdout.split("\n")[1].split() == ["*.*", "[]", "[]", "[*]"]
    whoami = await asyncio.to_thread(kubectl, kubeconfig, "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == "admin"
