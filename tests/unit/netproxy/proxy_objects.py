"""API objects for the proxy's unit tests: Services and EndpointSlices as the API server returns them."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(ns: str, name: str, cluster_ip: str, ports: list[Obj], **spec: Any) -> Obj:
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": "1"},
            "spec": {"clusterIP": cluster_ip, "type": spec.pop("type", "ClusterIP"), "ports": ports, **spec}}


def endpoint_slice(ns: str, service_name: str, ports: list[Obj], endpoints: list[tuple[str, str]],
                   name: str | None = None, **conditions: bool) -> Obj:
    return {"metadata": {"namespace": ns, "name": name or f"{service_name}-abc",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "ports": ports,
            "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": True, **conditions}}
                          for ip, node in endpoints]}


def golden_objects() -> tuple[list[Obj], list[Obj]]:
    """Three services: two endpoints + NodePort; UDP without endpoints; eTP Local + affinity + external IP."""
    services = [
        service("ns1", "svc1", "172.30.0.41", [{"name": "p80", "port": 80, "protocol": "TCP",
                                                "nodePort": 30080}], type="NodePort"),
        service("ns2", "svc2", "172.30.0.42", [{"port": 53, "protocol": "UDP"}]),
        service("ns3", "svc3", "172.30.0.43", [{"name": "http", "port": 80, "nodePort": 30003}], type="NodePort",
                externalIPs=["192.168.99.1"], externalTrafficPolicy="Local", sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}}),
    ]
    slices = [
        endpoint_slice("ns1", "svc1", [{"name": "p80", "port": 8080, "protocol": "TCP"}],
                       [("10.180.1.1", "node2"), ("10.180.0.1", "node1")]),
        endpoint_slice("ns3", "svc3", [{"name": "http", "port": 80, "protocol": "TCP"}],
                       [("10.180.0.2", "node1"), ("10.180.1.2", "node2")]),
    ]
    return services, slices
