"""The real kubectl against pyk8s's API server: every verb a user types first."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KUBECTL_MINORS, kubectl, kubectl_binary

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: pyk8s.local/web:1
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


async def run(kubeconfig: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(kubectl, kubeconfig, *args, **kw)  # type: ignore[arg-type]


async def test_get_columns_and_discovery_without_warnings(kubeconfig: Path) -> None:
    result = await run(kubeconfig, "get", "namespaces")
    assert result.stdout.split()[:3] == ["NAME", "STATUS", "AGE"]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(result.stdout.split())
    assert result.stderr == ""
    svc = await run(kubeconfig, "get", "svc", "-A", "-o", "wide")
    assert "kubernetes" in svc.stdout and "10.96.0.1" in svc.stdout and "SELECTOR" in svc.stdout
    resources = await run(kubeconfig, "api-resources")
    assert "deployments" in resources.stdout and "deploy" in resources.stdout
    assert resources.stderr == ""


async def test_apply_twice_is_unchanged_and_allocates_service(kubeconfig: Path) -> None:
    first = await run(kubeconfig, "apply", "-f", "-", input=DEPLOYMENT)
    assert "deployment.apps/web created" in first.stdout and "service/web created" in first.stdout
    second = await run(kubeconfig, "apply", "-f", "-", input=DEPLOYMENT)
    assert "deployment.apps/web unchanged" in second.stdout and "service/web unchanged" in second.stdout
    svc = json.loads((await run(kubeconfig, "get", "svc", "web", "-o", "json")).stdout)
    assert svc["spec"]["clusterIP"].startswith("10.")
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    server_side = await run(kubeconfig, "apply", "--server-side", "-f", "-", input=DEPLOYMENT)
    assert "serverside-applied" in server_side.stdout


async def test_scale_label_annotate_patch_and_jsonpath(kubeconfig: Path) -> None:
    await run(kubeconfig, "apply", "-f", "-", input=DEPLOYMENT)
    await run(kubeconfig, "scale", "deployment", "web", "--replicas=4")
    await run(kubeconfig, "label", "deployment", "web", "tier=front")
    await run(kubeconfig, "annotate", "deployment", "web", "note=hello")
    await run(kubeconfig, "patch", "deployment", "web", "-p",
              '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"pyk8s.local/web:2"}]}}}}')
    out = await run(kubeconfig, "get", "deploy", "-l", "tier=front", "-o",
                    "jsonpath={.items[0].spec.replicas} {.items[0].metadata.annotations.note} "
                    "{.items[0].spec.template.spec.containers[0].image} "
                    "{.items[0].spec.template.spec.containers[0].ports[0].containerPort}")
    assert out.stdout.split() == ["4", "hello", "pyk8s.local/web:2", "8080"]
    # strategic merge kept the port of the container merged by name; generation counted spec changes
    gen = await run(kubeconfig, "get", "deploy", "web", "-o", "jsonpath={.metadata.generation}")
    assert int(gen.stdout) == 3
    none = await run(kubeconfig, "get", "deploy", "-l", "tier=back")
    assert "No resources found" in none.stderr


async def test_field_selector_yaml_and_delete(kubeconfig: Path) -> None:
    await run(kubeconfig, "create", "configmap", "c1", "--from-literal=a=b")
    await run(kubeconfig, "create", "namespace", "other")
    await run(kubeconfig, "create", "configmap", "c2", "-n", "other", "--from-literal=x=y")
    by_name = await run(kubeconfig, "get", "cm", "-A", "--field-selector", "metadata.name=c2", "-o", "name")
    assert by_name.stdout.strip() == "configmap/c2"
    text = (await run(kubeconfig, "get", "cm", "c1", "-o", "yaml")).stdout
    assert "a: b" in text and "resourceVersion:" in text and "uid:" in text
    await run(kubeconfig, "delete", "cm", "c1")
    missing = await run(kubeconfig, "get", "cm", "c1", check=False)
    assert missing.returncode != 0 and 'configmaps "c1" not found' in missing.stderr
    bad = await run(kubeconfig, "get", "pods", "--field-selector", "spec.bogus=x", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.bogus" in bad.stderr


async def test_get_watch_prints_changes(kubeconfig: Path) -> None:
    env_proc = await asyncio.create_subprocess_exec(
        kubectl_binary(), "--kubeconfig", str(kubeconfig), "get", "configmaps", "-w", "--request-timeout=0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await asyncio.sleep(1.0)
        await run(kubeconfig, "create", "configmap", "watched", "--from-literal=k=v")
        await run(kubeconfig, "label", "configmap", "watched", "x=y")
        await run(kubeconfig, "delete", "configmap", "watched")
        seen = b""
        assert env_proc.stdout is not None
        deadline = asyncio.get_running_loop().time() + 15
        while seen.count(b"watched") < 3 and asyncio.get_running_loop().time() < deadline:
            try:
                seen += await asyncio.wait_for(env_proc.stdout.read(4096), 2)
            except TimeoutError:
                continue
        assert seen.count(b"watched") >= 3, seen
    finally:
        env_proc.kill()
        await env_proc.wait()


async def test_invalid_objects_get_upstream_errors(kubeconfig: Path) -> None:
    bad_name = await run(kubeconfig, "create", "configmap", "Bad_Name", check=False)
    assert bad_name.returncode != 0
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in bad_name.stderr
    bad_selector = await run(kubeconfig, "apply", "-f", "-", check=False, input=DEPLOYMENT.replace(
        "selector: {matchLabels: {app: web}}", "selector: {matchLabels: {app: other}}"))
    assert bad_selector.returncode != 0 and "`selector` does not match template `labels`" in bad_selector.stderr
    unknown = await run(kubeconfig, "apply", "-f", "-", check=False, input=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: u}\ndataa: {a: b}\n"))
    assert unknown.returncode != 0 and 'unknown field "dataa"' in unknown.stderr


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
async def test_every_bundled_kubectl_lists_and_creates(kubeconfig: Path, minor: str) -> None:
    binary = kubectl_binary(minor)
    listing = await run(kubeconfig, "get", "ns", binary=binary)
    assert "kube-system" in listing.stdout
    assert "discovery" not in listing.stderr.lower() and "openapi" not in listing.stderr.lower()
    created = await run(kubeconfig, "apply", "-f", "-", binary=binary, input=DEPLOYMENT)
    assert "deployment.apps/web" in created.stdout
    assert "openapi" not in created.stderr.lower()
    again = await run(kubeconfig, "apply", "-f", "-", binary=binary, input=DEPLOYMENT)
    assert "deployment.apps/web unchanged" in again.stdout
    explain = await run(kubeconfig, "explain", "pods.spec", binary=binary)
    assert "KIND:" in explain.stdout and "Pod" in explain.stdout
