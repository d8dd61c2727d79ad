"""The protobuf request decoder: Go's always-written zero values, special types, unknown fields."""

from __future__ import annotations

import pytest

from controlplane.api import protobuf
from controlplane.api.errors import StatusError
from controlplane.api.proto.gen import apps_v1_pb2, core_v1_pb2, policy_v1_pb2, runtime_pb2


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    unknown = runtime_pb2.Unknown(typeMeta=runtime_pb2.TypeMeta(apiVersion=api_version, kind=kind), raw=raw)
    return protobuf.MAGIC + unknown.SerializeToString()


def deployment_as_go_writes_it() -> apps_v1_pb2.Deployment:
    """What kubectl's Go structs produce: every non-pointer field written, empty or not."""
    d = apps_v1_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = ""
    d.metadata.creationTimestamp.SetInParent()  # Go's zero time: an empty Time message
    d.metadata.labels["app"] = "web"
    d.spec.replicas = 0  # a pointer upstream: zero is a value
    d.spec.minReadySeconds = 0  # not a pointer: zero means unset
    d.spec.selector.matchLabels["app"] = "web"
    d.spec.strategy.type = ""
    d.spec.strategy.rollingUpdate.maxUnavailable.type = 0
    d.spec.strategy.rollingUpdate.maxUnavailable.intVal = 0
    d.spec.strategy.rollingUpdate.maxSurge.type = 1
    d.spec.strategy.rollingUpdate.maxSurge.strVal = "50%"
    template = d.spec.template
    template.metadata.labels["app"] = "web"
    template.spec.terminationGracePeriodSeconds = 0
    container = template.spec.containers.add()
    container.name = "web"
    container.image = "pyk8s.local/web:1"
    container.imagePullPolicy = ""
    container.terminationMessagePath = ""
    container.args.extend(["", "--flag"])
    port = container.ports.add()
    port.containerPort = 8080
    port.hostPort = 0
    port.protocol = "TCP"
    container.resources.limits["cpu"].string = "500m"
    container.resources.SetInParent()
    volume = template.spec.volumes.add()
    volume.name = "scratch"
    volume.volumeSource.emptyDir.SetInParent()
    d.status.SetInParent()
    return d


def test_go_zero_values_are_unset_except_where_upstream_has_a_pointer() -> None:
    obj = protobuf.decode(envelope("apps/v1", "Deployment", deployment_as_go_writes_it().SerializeToString()))
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "Deployment"
    assert obj["metadata"] == {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}}
    spec = obj["spec"]
    assert spec["replicas"] == 0 and "minReadySeconds" not in spec
    assert spec["strategy"] == {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}}
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["containers"] == [{"name": "web", "image": "pyk8s.local/web:1", "args": ["", "--flag"],
                                  "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                  "resources": {"limits": {"cpu": "500m"}}}]
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    assert "status" not in obj


def test_secret_bytes_times_and_empty_map_values() -> None:
    secret = core_v1_pb2.Secret()
    secret.metadata.name = "s"
    secret.metadata.creationTimestamp.seconds = 1_700_000_000
    secret.data["a"] = b"b"
    secret.data["empty"] = b""
    obj = protobuf.decode(envelope("v1", "Secret", secret.SerializeToString()))
    assert obj["data"] == {"a": "Yg==", "empty": ""}
    assert obj["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"


def test_unknown_fields_are_refused_not_dropped() -> None:
    raw = core_v1_pb2.ConfigMap(data={"a": "b"}).SerializeToString() + b"\xb8\x3e\x01"  # field 999, varint 1
    with pytest.raises(StatusError) as refused:
        protobuf.decode(envelope("v1", "ConfigMap", raw))
    assert refused.value.code == 400 and "[999]" in refused.value.message


def test_unknown_kinds_and_bad_bodies() -> None:
    with pytest.raises(StatusError) as unknown_kind:
        protobuf.decode(envelope("example.com/v1", "Widget", b""))
    assert unknown_kind.value.code == 415
    with pytest.raises(StatusError) as no_magic:
        protobuf.decode(b"{}")
    assert no_magic.value.code == 400
    with pytest.raises(StatusError) as truncated:
        protobuf.decode(protobuf.MAGIC + b"\x0a\xff")
    assert truncated.value.code == 400


def test_go_duration_strings() -> None:
    assert protobuf._go_duration(0) == "0s"
    assert protobuf._go_duration(1_500_000) == "1.5ms"
    assert protobuf._go_duration(90 * 10**9) == "1m30s"
    assert protobuf._go_duration(3_723_500_000_000) == "1h2m3.5s"


def test_eviction_keeps_a_zero_grace_period() -> None:
    eviction = policy_v1_pb2.Eviction()
    eviction.metadata.name = "web-1"
    eviction.metadata.namespace = "default"
    eviction.deleteOptions.gracePeriodSeconds = 0
    eviction.deleteOptions.propagationPolicy = "Background"
    obj = protobuf.decode(envelope("policy/v1", "Eviction", eviction.SerializeToString()))
    assert obj["deleteOptions"] == {"gracePeriodSeconds": 0, "propagationPolicy": "Background"}
    assert obj["metadata"] == {"name": "web-1", "namespace": "default"}
