"""Unknown fields and JSON type mismatches found by walking the per-kind schemas."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.api.schema import reject_type_errors, strict_decoding_error, type_errors, unknown_fields


def _pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", **container}], **spec}}


def test_nested_unknown_fields_are_found_with_upstream_paths() -> None:
    pod = _pod({"imagee": "x", "livenessProbe": {"httpGet": {"port": 80, "pth": "/"}}},
               volumes=[{"name": "v", "emptyDir": {"sizeLimt": "1Gi"}}])
    pod["metadata"]["lables"] = {}
    pod["extra"] = 1
    assert unknown_fields(resources.PODS, pod) == [
        "metadata.lables", "spec.containers[0].imagee", "spec.containers[0].livenessProbe.httpGet.pth",
        "spec.volumes[0].emptyDir.sizeLimt", "extra"]


def test_known_fields_pass() -> None:
    pod = _pod({"ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "1", "memory": 1024}, "requests": {"cpu": 0.5}},
                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}, "runAsUser": 0}},
               affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                   {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]},
                    "topologyKey": "kubernetes.io/hostname"}]}},
               tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}])
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                                                          "lastTransitionTime": "2024-01-01T00:00:00Z"}],
                     "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0, "image": "i",
                                            "imageID": "", "state": {"running": {"startedAt": None}}}]}
    assert unknown_fields(resources.PODS, pod) == []
    assert type_errors(resources.PODS, pod) == []


def test_maps_are_open() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "labels": {"any": "thing"}, "annotations": {"x.example/y": "z"}},
          "data": {"whatever": "v"}, "binaryData": {"b": "AAEC"}}
    assert unknown_fields(resources.CONFIGMAPS, cm) == []
    svc = {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    assert unknown_fields(resources.SERVICES, svc) == []


def test_preserve_unknown_fields_are_open() -> None:
    rev = {"metadata": {"name": "r", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
           "data": {"spec": {"template": {"anything": True}}}, "revision": 1}
    assert unknown_fields(resources.CONTROLLERREVISIONS, rev) == []
    assert unknown_fields(resources.CONTROLLERREVISIONS, {**rev, "dat": 1}) == ["dat"]


@pytest.mark.parametrize("value", [1, "25%", "http"])
def test_int_or_string_accepts_both(value: Any) -> None:
    deploy = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": value, "maxUnavailable": value}}}}
    assert type_errors(resources.DEPLOYMENTS, deploy) == []


@pytest.mark.parametrize("value", [True, [1], {"a": 1}])
def test_int_or_string_rejects_other_types(value: Any) -> None:
    deploy = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": value}}}}
    [error] = type_errors(resources.DEPLOYMENTS, deploy)
    # IntOrString decodes itself (json.Unmarshal into its int32), so upstream's error names no struct field.
    shown = {bool: "bool", list: "array", dict: "object"}[type(value)]
    assert error == f"json: cannot unmarshal {shown} into Go value of type int32"


@pytest.mark.parametrize(("container", "message"), [
    ({"ports": [{"containerPort": "80"}]},
     "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort "
     "of type int32"),
    ({"ports": {"containerPort": 80}},
     "json: cannot unmarshal object into Go struct field Container.spec.containers.ports of type "
     "[]v1.ContainerPort"),
    ({"command": "sleep 1"},
     "json: cannot unmarshal string into Go struct field Container.spec.containers.command of type []string"),
    ({"tty": "yes"}, "json: cannot unmarshal string into Go struct field Container.spec.containers.tty of type bool"),
    ({"livenessProbe": {"periodSeconds": 1.5}},
     "json: cannot unmarshal number 1.5 into Go struct field Probe.spec.containers.livenessProbe.periodSeconds "
     "of type int32"),
    ({"resources": {"limits": {"cpu": True}}},
     "json: cannot unmarshal bool into Go struct field ResourceRequirements.spec.containers.resources.limits "
     "of type resource.Quantity"),
])
def test_wrong_json_types_are_reported_like_upstream(container: dict[str, Any], message: str) -> None:
    assert type_errors(resources.PODS, _pod(container)) == [message]


def test_null_values_and_labels_of_the_wrong_type() -> None:
    assert type_errors(resources.PODS, _pod({"ports": None, "tty": None})) == []
    pod = _pod({})
    pod["metadata"]["labels"] = {"a": 1}
    assert type_errors(resources.PODS, pod) == [
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"]
    assert type_errors(resources.PODS, {"spec": []}) == [
        "json: cannot unmarshal array into Go struct field Pod.spec of type v1.PodSpec"]


def test_reject_type_errors_is_a_bad_request() -> None:
    with pytest.raises(StatusError) as caught:
        reject_type_errors(resources.PODS, _pod({"ports": [{"containerPort": "80"}]}))
    assert caught.value.code == 400
    assert caught.value.to_status()["message"].startswith('Pod in version "v1" cannot be handled as a Pod: json: ')
    reject_type_errors(resources.PODS, _pod({}))


def test_every_kind_walks_its_own_schema() -> None:
    deploy = {"spec": {"template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}}}
    assert unknown_fields(resources.DEPLOYMENTS, deploy) == ["spec.template.spec.containers[0].imagee"]
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"nme": "x"}]}}}}}}
    assert unknown_fields(resources.CRONJOBS, cron) == ["spec.jobTemplate.spec.template.spec.initContainers[0].nme"]
    lease = {"spec": {"holderIdentity": "a", "renewTime": "2024-01-01T00:00:00.000000Z", "leaseDurationSecond": 1}}
    assert unknown_fields(resources.LEASES, lease) == ["spec.leaseDurationSecond"]
    slice_ = {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True},
                                                    "zone": "a", "hints": {"forZones": [{"name": "a"}]}}],
              "ports": [{"port": 80, "protocol": "TCP", "nmae": "x"}]}
    assert unknown_fields(resources.ENDPOINTSLICES, slice_) == ["ports[0].nmae"]
    event = {"involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}, "count": 1,
             "eventTime": None, "reportingController": "x"}
    assert unknown_fields(resources.EVENTS, event) == ["reportingController"]
    node = {"status": {"capacity": {"cpu": "2"}, "nodeInfo": {"kubeletVersion": "v1.31.0"},
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "podCIDR": "10.244.0.0/24"}}
    assert unknown_fields(resources.NODES, node) == []


def test_strict_decoding_error_names_every_field() -> None:
    error = strict_decoding_error(resources.DEPLOYMENTS, ["spec.replicass", "spec.template.spec.containers[0].x"])
    assert error.code == 400
    assert error.to_status()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].x"')
