"""kubectl explain and server-side field validation, both driven by the per-kind schemas."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KUBECTL_MINORS, kubectl, kubectl_binary

POD = """
apiVersion: v1
kind: Pod
metadata: {name: typo, labels: {app: typo}}
spec:
  containers:
  - name: main
    image: pyk8s.local/web:1
    imagee: pyk8s.local/web:2
"""


async def run(kubeconfig: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(kubectl, kubeconfig, *args, **kw)  # type: ignore[arg-type]


async def test_explain_nested_field_shows_project_descriptions(kubeconfig: Path) -> None:
    result = await run(kubeconfig, "explain", "pod.spec.containers.livenessProbe")
    out = result.stdout
    assert "KIND:" in out and "Pod" in out
    assert "livenessProbe <Probe>" in out
    assert "Check that restarts the container when it fails." in out
    for field in ("httpGet", "tcpSocket", "exec", "periodSeconds", "failureThreshold"):
        assert field in out
    deeper = await run(kubeconfig, "explain", "pod.spec.containers.livenessProbe.httpGet")
    assert "port" in deeper.stdout and "IntOrString" in deeper.stdout and "-required-" in deeper.stdout


async def test_explain_recursive_lists_nested_fields(kubeconfig: Path) -> None:
    result = await run(kubeconfig, "explain", "deployment.spec", "--recursive")
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert any(line.startswith("strategy") for line in lines)
    assert any(line.startswith("rollingUpdate") for line in lines)
    assert any(line.startswith("maxSurge") for line in lines)
    strategy = await run(kubeconfig, "explain", "deployment.spec.strategy", "--recursive")
    assert "maxUnavailable" in strategy.stdout


async def test_apply_rejects_nested_unknown_field(kubeconfig: Path) -> None:
    strict = await run(kubeconfig, "apply", "-f", "-", input=POD, check=False)
    assert strict.returncode != 0
    assert 'Pod in version "v1" cannot be handled as a Pod: strict decoding error: ' \
           'unknown field "spec.containers[0].imagee"' in strict.stderr
    dry = await run(kubeconfig, "create", "--dry-run=server", "-f", "-", input=POD, check=False)
    assert dry.returncode != 0 and 'unknown field "spec.containers[0].imagee"' in dry.stderr
    missing = await run(kubeconfig, "get", "pod", "typo", check=False)
    assert missing.returncode != 0


async def test_apply_warns_or_ignores_when_asked(kubeconfig: Path) -> None:
    warned = await run(kubeconfig, "apply", "--validate=warn", "-f", "-", input=POD)
    assert "pod/typo created" in warned.stdout
    assert "spec.containers[0].imagee" in warned.stderr
    await run(kubeconfig, "delete", "pod", "typo", "--wait=false")
    ignored = await run(kubeconfig, "apply", "--validate=false", "-f", "-", input=POD.replace("typo", "typo2"))
    assert "pod/typo2 created" in ignored.stdout
    assert "imagee" not in ignored.stderr


async def test_wrong_json_type_is_a_bad_request(kubeconfig: Path) -> None:
    bad = POD.replace("    imagee: pyk8s.local/web:2\n", "    ports: [{containerPort: \"80\"}]\n")
    result = await run(kubeconfig, "create", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort " \
           "of type int32" in result.stderr


async def test_valid_objects_with_open_maps_pass_strict(kubeconfig: Path) -> None:
    manifest = """
apiVersion: v1
kind: ConfigMap
metadata: {name: open, labels: {any: thing}, annotations: {free.example/form: "yes"}}
data: {whatever: value, other: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: "25%", maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: pyk8s.local/web:1
        resources: {limits: {cpu: 1, memory: 64Mi}}
        readinessProbe: {httpGet: {port: http, path: /}}
        ports: [{containerPort: 8080, name: http}]
"""
    result = await run(kubeconfig, "apply", "-f", "-", input=manifest)
    assert "configmap/open created" in result.stdout and "deployment.apps/web created" in result.stdout
    again = await run(kubeconfig, "apply", "-f", "-", input=manifest)
    assert "unchanged" in again.stdout


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
async def test_every_bundled_kubectl_explains_nested_fields(kubeconfig: Path, minor: str) -> None:
    binary = kubectl_binary(minor)
    result = await run(kubeconfig, "explain", "pod.spec.containers.livenessProbe.httpGet", binary=binary)
    assert "Send an HTTP GET request." in result.stdout
    assert "httpHeaders" in result.stdout


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
async def test_every_bundled_kubectl_gets_the_nested_strict_error(kubeconfig: Path, minor: str) -> None:
    binary = kubectl_binary(minor)
    result = await run(kubeconfig, "apply", "-f", "-", input=POD, binary=binary, check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.containers[0].imagee"' in result.stderr


async def test_patching_an_existing_object_checks_the_result(kubeconfig: Path) -> None:
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: patched}
spec:
  selector: {matchLabels: {app: patched}}
  template:
    metadata: {labels: {app: patched}}
    spec:
      containers:
      - {name: web, image: pyk8s.local/web:1}
"""
    await run(kubeconfig, "apply", "-f", "-", input=manifest)
    typo = manifest.replace("image: pyk8s.local/web:1", "image: pyk8s.local/web:2, imagee: x")
    result = await run(kubeconfig, "apply", "-f", "-", input=typo, check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.template.spec.containers[0].imagee"' in result.stderr
    wrong_type = await run(kubeconfig, "patch", "deployment", "patched", "--type=merge", "-p",
                           '{"spec": {"replicas": "three"}}', check=False)
    assert wrong_type.returncode != 0
    assert "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32" \
        in wrong_type.stderr
    image = await run(kubeconfig, "get", "deployment", "patched", "-o", "jsonpath={.spec.template.spec."
                      "containers[0].image}")
    assert image.stdout == "pyk8s.local/web:1"
