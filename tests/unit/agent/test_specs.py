"""Pod spec to CRI config: environment, resources, QoS, DNS, mounts — pure functions, no runtime."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from agent import containerspec as cs
from cri import api_pb2

Obj = dict[str, Any]


class Objects:
    def __init__(self, configmaps: dict[str, Obj] | None = None, secrets: dict[str, Obj] | None = None) -> None:
        self.configmaps = configmaps or {}
        self.secrets = secrets or {}

    def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.configmaps.get(name)

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get(name)

    async def token(self, pod: Obj, service_account: str, audiences: list[str],
                    expiration_seconds: int) -> tuple[str, float]:
        raise NotImplementedError


def ctx(**kw: Any) -> cs.NodeContext:
    base = dict(node_name="n1", node_ip="10.0.0.1", cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                cgroup_root="/kubepods", pod_logs_dir=Path("/logs"), allocatable={"cpu": "2", "memory": "4Gi"},
                memory_capacity=4 * 1024**3)
    base.update(kw)
    return cs.NodeContext(**base)  # type: ignore[arg-type]


def pod(containers: list[Obj], **spec: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"a": "b"}},
            "spec": {"containers": containers, **spec}, "status": {"podIP": "10.244.0.5"}}


def test_env_order_expansion_and_sources() -> None:
    container = {"name": "c", "image": "i",
                 "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                 "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(MISSING)-$$(A)"},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}},
                         {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}
    objects = Objects({"cm": {"data": {"one": "1"}}}, {"sec": {"data": {"k": base64.b64encode(b"v").decode()}}})
    env = cs.container_env(ctx(), pod([container]), container, objects, services=[])
    assert env["CM_one"] == "1" and env["A"] == "x" and env["B"] == "x-$(MISSING)-$(A)"
    assert env["IP"] == "10.244.0.5" and env["S"] == "v" and env["CPU"] == "2"


def test_missing_configmap_key_is_a_config_error_unless_optional() -> None:
    ref: dict[str, Any] = {"name": "cm", "key": "nope"}
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": ref}}]}
    with pytest.raises(cs.ContainerConfigError, match="couldn't find key nope in ConfigMap ns/cm"):
        cs.container_env(ctx(), pod([container]), container, Objects({"cm": {"data": {}}}), services=[])
    with pytest.raises(cs.ContainerConfigError, match='configmap "cm" not found'):
        cs.container_env(ctx(), pod([container]), container, Objects(), services=[])
    ref["optional"] = True
    assert "X" not in cs.container_env(ctx(), pod([container]), container, Objects(), services=[])


def test_service_links() -> None:
    svc = {"metadata": {"name": "my-db", "namespace": "ns"},
           "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}}
    env = cs.service_env([svc])
    assert env["MY_DB_SERVICE_HOST"] == "10.96.0.7" and env["MY_DB_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SERVICE_PORT_SQL"] == "5432" and env["MY_DB_PORT"] == "tcp://10.96.0.7:5432"
    assert env["MY_DB_PORT_5432_TCP_ADDR"] == "10.96.0.7"
    headless = {"metadata": {"name": "h", "namespace": "ns"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}
    assert cs.service_env([headless]) == {}


def test_qos_and_resources() -> None:
    guaranteed = {"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                                             "requests": {"cpu": "500m", "memory": "64Mi"}}}
    burstable = {"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}}
    assert cs.qos_class(pod([guaranteed])) == "Guaranteed"
    assert cs.qos_class(pod([burstable])) == "Burstable"
    assert cs.qos_class(pod([{"name": "c"}])) == "BestEffort"
    resources = cs.linux_resources(ctx(), pod([guaranteed]), guaranteed)
    assert resources.cpu_shares == 512 and resources.cpu_quota == 50000 and resources.cpu_period == 100000
    assert resources.memory_limit_in_bytes == 64 * 1024**2 and resources.oom_score_adj == -997
    assert cs.linux_resources(ctx(), pod([burstable]), burstable).oom_score_adj == 750
    assert cs.linux_resources(ctx(), pod([{"name": "c"}]), {"name": "c"}).cpu_shares == 2
    assert cs.cgroup_parent(ctx(), pod([burstable])) == "/kubepods/burstable/podu-1"
    assert cs.cgroup_parent(ctx(), pod([guaranteed])) == "/kubepods/podu-1"


def test_dns_cluster_first() -> None:
    config = cs.dns_config(ctx(), pod([{"name": "c"}], dnsConfig={"options": [{"name": "ndots", "value": "2"}]}))
    assert list(config.servers) == ["10.96.0.10"]
    assert list(config.searches)[:3] == ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert list(config.options) == ["ndots:2"]


def test_sandbox_and_container_config() -> None:
    container = {"name": "c", "image": "img:1", "command": ["echo", "$(A)"], "env": [{"name": "A", "value": "z"}],
                 "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}],
                 "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_ADMIN"]}}}
    p = pod([container], hostname="h1")
    sandbox = cs.sandbox_config(ctx(), p, attempt=2)
    assert sandbox.metadata.attempt == 2 and sandbox.hostname == "h1"
    assert sandbox.port_mappings[0].host_port == 8080 and sandbox.labels["io.kubernetes.pod.uid"] == "u-1"
    assert sandbox.log_directory == "/logs/ns_p_u-1"
    config = cs.container_config(ctx(), p, container, restart_count=3, env={"A": "z"}, mounts=[])
    assert list(config.command) == ["echo", "z"] and config.log_path == "c/3.log"
    assert config.annotations["io.kubernetes.container.restartCount"] == "3"
    assert config.linux.security_context.run_as_user.value == 1000
    assert list(config.linux.security_context.capabilities.add_capabilities) == ["NET_ADMIN"]
    assert isinstance(config, api_pb2.ContainerConfig)


def test_mounts_subpath_and_readonly(tmp_path: Path) -> None:
    container = {"name": "c", "volumeMounts": [{"name": "cm", "mountPath": "/etc/cfg"},
                                               {"name": "data", "mountPath": "/d", "subPath": "x/y"}]}
    p = pod([container], volumes=[{"name": "cm", "configMap": {"name": "cm"}}, {"name": "data", "emptyDir": {}}])
    (tmp_path / "data").mkdir()
    mounts = cs.container_mounts(p, container, {"cm": tmp_path / "cm", "data": tmp_path / "data"}, [])
    assert mounts[0].readonly is True and mounts[1].readonly is False
    assert mounts[1].host_path == str((tmp_path / "data" / "x" / "y").resolve())
    bad = {"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "../escape"}]}
    with pytest.raises(cs.ContainerConfigError, match=re.escape("SubPath `../escape`: must not contain '..'")):
        cs.container_mounts(p, bad, {"data": tmp_path / "data"}, [])
