"""Unconditional defaults come from the kind schemas; conditional ones stay hand-written."""

from __future__ import annotations

from typing import Any

from controlplane.api import resources
from controlplane.api.schema import apply_defaults
from controlplane.api.schema.check import fill_defaults


def _pod_spec() -> dict[str, Any]:
    return {"containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 80}],
                            "livenessProbe": {"httpGet": {"port": 80}, "periodSeconds": 3}}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
            "volumes": [{"name": "v", "configMap": {"name": "cm"}}]}


def test_schema_defaults_reach_every_depth_without_overwriting() -> None:
    pod = {"metadata": {"name": "p"}, "spec": _pod_spec()}
    fill_defaults(resources.PODS, pod)
    container = pod["spec"]["containers"][0]
    assert container["ports"][0]["protocol"] == "TCP"
    probe = container["livenessProbe"]
    assert probe["periodSeconds"] == 3
    assert (probe["timeoutSeconds"], probe["successThreshold"], probe["failureThreshold"]) == (1, 1, 3)
    assert probe["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    assert container["terminationMessagePolicy"] == "File"
    assert pod["spec"]["ephemeralContainers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert pod["spec"]["volumes"][0]["configMap"]["defaultMode"] == 420
    assert pod["spec"]["dnsPolicy"] == "ClusterFirst" and pod["spec"]["enableServiceLinks"] is True
    assert "readinessProbe" not in container  # absent objects are not created
    assert "restartPolicy" not in pod["spec"]  # conditional: hand-written


def test_apply_defaults_combines_schema_and_conditional_defaults() -> None:
    job = {"spec": {"template": {"spec": _pod_spec()}}}
    apply_defaults(resources.JOBS, job)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["completionMode"], spec["completions"], spec["parallelism"]) == \
        (6, "NonIndexed", 1, 1)
    assert "restartPolicy" not in spec["template"]["spec"]
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    deploy = {"spec": {"template": {"spec": _pod_spec()}}}
    apply_defaults(resources.DEPLOYMENTS, deploy)
    assert (deploy["spec"]["replicas"], deploy["spec"]["revisionHistoryLimit"]) == (1, 10)
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert deploy["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    svc = {"spec": {"ports": [{"port": 80}]}}
    apply_defaults(resources.SERVICES, svc)
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["ports"][0] == {"port": 80, "protocol": "TCP",
                                                                                "targetPort": 80}
    secret: dict[str, Any] = {}
    apply_defaults(resources.SECRETS, secret)
    assert secret["type"] == "Opaque"
