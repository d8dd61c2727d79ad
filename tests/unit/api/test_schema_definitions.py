"""The per-kind schemas are complete and self-consistent, and the OpenAPI documents carry them."""

from __future__ import annotations

from typing import Any

import orjson

from controlplane.api.resources import RESOURCES, group_versions
from controlplane.api.schema.build import REF_PREFIX
from controlplane.api.schema.types import definition_name, definitions, list_definition_name
from controlplane.apiserver import openapi


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                found += _refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _refs(value)
    return found


def test_every_resource_type_has_a_schema_and_a_list_schema() -> None:
    table = definitions()
    for rt in RESOURCES:
        schema = table[definition_name(rt)]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": rt.group, "version": rt.version, "kind": rt.kind}]
        assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])
        if not rt.stored:
            assert list_definition_name(rt) not in table  # reviews are never listed
            continue
        listing = table[list_definition_name(rt)]
        assert listing["x-kubernetes-group-version-kind"][0]["kind"] == f"{rt.kind}List"


def test_every_ref_resolves() -> None:
    table = definitions()
    refs = _refs(dict(table))
    assert refs
    for ref in refs:
        assert ref.startswith(REF_PREFIX) and ref[len(REF_PREFIX):] in table, ref


def test_every_object_field_has_a_type_and_a_description() -> None:
    for name, schema in definitions().items():
        for field, prop in (schema.get("properties") or {}).items():
            assert "description" in prop, f"{name}.{field}"
            assert "type" in prop or "allOf" in prop or "$ref" in prop, f"{name}.{field}"


def test_upstream_list_annotations() -> None:
    table = definitions()
    containers = table["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    ports = table["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    mounts = table["io.k8s.api.core.v1.Container"]["properties"]["volumeMounts"]
    assert mounts["x-kubernetes-patch-merge-key"] == "mountPath"
    tolerations = table["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"]
    assert tolerations["x-kubernetes-list-type"] == "atomic" and "x-kubernetes-patch-merge-key" not in tolerations
    conditions = table["io.k8s.api.apps.v1.DeploymentStatus"]["properties"]["conditions"]
    assert conditions["x-kubernetes-patch-merge-key"] == "type"
    assert table["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"] is True


def test_openapi_documents_carry_the_schemas() -> None:
    for group, version in group_versions():
        doc = orjson.loads(openapi.document(group, version))
        schemas = doc["components"]["schemas"]
        for rt in RESOURCES:
            if (rt.group, rt.version) == (group, version):
                assert definition_name(rt) in schemas
                assert (list_definition_name(rt) in schemas) == rt.stored
        for ref in _refs(doc):
            assert ref[len(REF_PREFIX):] in schemas, ref
        assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    core = orjson.loads(openapi.document("", "v1"))["components"]["schemas"]
    probe = core["io.k8s.api.core.v1.Container"]["properties"]["livenessProbe"]
    assert probe["allOf"] == [{"$ref": REF_PREFIX + "io.k8s.api.core.v1.Probe"}] and probe["description"]
    apps = orjson.loads(openapi.document("apps", "v1"))
    assert "io.k8s.api.apps.v1.Deployment" in apps["components"]["schemas"]
    assert "io.k8s.api.core.v1.Pod" not in apps["components"]["schemas"]
    patch_op = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch_op["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert openapi.document("apps", "v1") is openapi.document("apps", "v1")  # cached, not rebuilt


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = definitions()[schema["$ref"][len(REF_PREFIX):]]
        elif "allOf" in schema:
            schema = schema["allOf"][0]
        else:
            return schema


def test_required_fields_and_list_map_keys_are_declared() -> None:
    for name, schema in definitions().items():
        props = schema.get("properties") or {}
        for field in schema.get("required", []):
            assert field in props, f"{name} requires undeclared {field}"
        for field, prop in props.items():
            if prop.get("x-kubernetes-list-type") != "map":
                continue
            item = _resolve(prop["items"])
            for key in prop["x-kubernetes-list-map-keys"]:
                assert key in item["properties"], f"{name}.{field} keyed by undeclared {key}"
            merge_key = prop.get("x-kubernetes-patch-merge-key")
            assert merge_key is None or merge_key in item["properties"], f"{name}.{field}"


def test_list_semantics_by_path() -> None:
    from controlplane.api.resources import DEPLOYMENTS, NODES, PODS, SERVICES
    from controlplane.api.schema.check import list_semantics

    ports = list_semantics(DEPLOYMENTS, ("spec", "template", "spec", "containers", "ports"))
    assert ports is not None and ports.merge_key == "containerPort"
    assert ports.map_keys == ("containerPort", "protocol") and ports.list_type == "map"
    svc_ports = list_semantics(SERVICES, ["spec", "ports"])
    assert svc_ports is not None and svc_ports.merge_key == "port"
    volumes = list_semantics(PODS, ["spec", "volumes"])
    assert volumes is not None and volumes.strategy == "merge,retainKeys"
    taints = list_semantics(NODES, ["spec", "taints"])
    assert taints is not None and taints.list_type == "atomic" and taints.merge_key == ""
    assert list_semantics(PODS, ["spec", "nodeName"]) is None
    assert list_semantics(PODS, ["spec", "nope"]) is None
