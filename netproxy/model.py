"""The proxy's view of a Service port and its endpoints, built from API objects.

Every backend renders the same model, so the translation from `v1.Service` and
`discovery.k8s.io/v1` EndpointSlice into service ports and endpoints lives here
once, with upstream's rules: headless and ExternalName services are skipped,
session affinity defaults to 10800 s, an endpoint counts when ready, and
serving-but-terminating endpoints are only a fallback.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, field, replace
from typing import Any

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_STICKY_SECONDS = 10800


@dataclass(frozen=True, order=True, slots=True)
class ServicePortName:
    """namespace/name:port plus protocol; upstream's key for one service port."""

    namespace: str
    name: str
    port: str
    protocol: str  # "TCP", "UDP", "SCTP"

    @property
    def service(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: ServicePortName
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    session_affinity: bool = False
    sticky_seconds: int = DEFAULT_STICKY_SECONDS
    external_policy_local: bool = False
    internal_policy_local: bool = False
    health_check_node_port: int = 0

    @property
    def protocol(self) -> str:
        return self.name.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_policy_local or (self.externally_accessible and not self.external_policy_local)

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (self.externally_accessible and self.external_policy_local)


@dataclass(frozen=True, order=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = field(default="", compare=False)
    ready: bool = field(default=True, compare=False)
    serving: bool = field(default=True, compare=False)
    terminating: bool = field(default=False, compare=False)
    is_local: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def own(text: str) -> str:
    """A copy of a string taken from a decoded API object, for what the proxy keeps.

    The decoded objects die once read, but one surviving string (a name, an IP)
    keeps its whole 1 MiB block of the allocator's memory in use, and with the
    strings of 10k objects kept that is nearly all of what the objects took.
    Copies made while the objects are alive land elsewhere."""
    return text.encode().decode()


def common(text: str) -> str:
    """The one shared copy of a string that recurs across objects (namespaces, node and port names)."""
    return sys.intern(text)


def _is_ipv4(value: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def service_ports(service: Obj) -> list[ServicePort]:
    """The proxied ports of one Service (none for headless or ExternalName services)."""
    spec = service.get("spec") or {}
    md = service["metadata"]
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type") == "ExternalName" or cluster_ip in ("", "None") or not _is_ipv4(cluster_ip):
        return []
    affinity = spec.get("sessionAffinity") == "ClientIP"
    sticky = DEFAULT_STICKY_SECONDS
    if affinity:
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
        sticky = int(timeout) if timeout else DEFAULT_STICKY_SECONDS
    cluster_ip = own(cluster_ip)
    external_ips = tuple(own(ip) for ip in spec.get("externalIPs") or () if _is_ipv4(ip))
    lb_ips: tuple[str, ...] = ()
    if spec.get("type") == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(own(i["ip"]) for i in ingress if i.get("ip") and _is_ipv4(i["ip"]))
    external_local = spec.get("externalTrafficPolicy") == "Local"
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    namespace, name = common(md.get("namespace") or "default"), own(md["name"])
    result = []
    for port in spec.get("ports") or []:
        protocol = common(port.get("protocol") or "TCP")
        node_port = int(port.get("nodePort") or 0) if spec.get("type") in ("NodePort", "LoadBalancer") else 0
        sp = ServicePort(
            name=ServicePortName(namespace, name, common(port.get("name") or ""), protocol),
            cluster_ip=cluster_ip, port=int(port["port"]), node_port=node_port, external_ips=external_ips,
            load_balancer_ips=lb_ips, session_affinity=affinity, sticky_seconds=sticky,
            internal_policy_local=internal_local,
            external_policy_local=False, health_check_node_port=0)
        if sp.externally_accessible and external_local:
            sp = replace(sp, external_policy_local=True,
                         health_check_node_port=int(spec.get("healthCheckNodePort") or 0))
        result.append(sp)
    return result


def slice_endpoints(endpoint_slice: Obj, node_name: str) -> dict[ServicePortName, list[Endpoint]]:
    """Endpoints of one EndpointSlice, per service port it names (IPv4 slices only)."""
    md = endpoint_slice["metadata"]
    service_name = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service_name or endpoint_slice.get("addressType", "IPv4") != "IPv4":
        return {}
    namespace, service_name = common(md.get("namespace") or "default"), own(service_name)
    result: dict[ServicePortName, list[Endpoint]] = {}
    for port in endpoint_slice.get("ports") or []:
        number = port.get("port")
        if not number:
            continue
        spn = ServicePortName(namespace, service_name, common(port.get("name") or ""),
                              common(port.get("protocol") or "TCP"))
        eps = result.setdefault(spn, [])
        for ep in endpoint_slice.get("endpoints") or []:
            addresses = ep.get("addresses") or []
            if not addresses or not _is_ipv4(addresses[0]):
                continue
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving") is not False if cond.get("serving") is not None else ready
            terminating = cond.get("terminating") is True
            node = common(ep.get("nodeName") or "")
            eps.append(Endpoint(own(addresses[0]), int(number), node, ready, serving, terminating,
                                bool(node) and node == node_name))
    return result


@dataclass(frozen=True, slots=True)
class Categorized:
    """Which endpoints each traffic policy of a service port uses (upstream CategorizeEndpoints)."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    all_reachable: tuple[Endpoint, ...]
    has_any: bool


def categorize(endpoints: list[Endpoint] | tuple[Endpoint, ...], svc: ServicePort) -> Categorized:
    cluster: tuple[Endpoint, ...] = ()
    has_any = False
    if svc.uses_cluster_endpoints:
        cluster = tuple(e for e in endpoints if e.ready)
        if not cluster:
            cluster = tuple(e for e in endpoints if e.serving and e.terminating)
        has_any = bool(cluster)
    if not svc.uses_local_endpoints:
        return Categorized(cluster, (), cluster, has_any)
    local_ready = local_fallback = False
    for e in endpoints:
        if e.ready:
            has_any = True
            local_ready = local_ready or e.is_local
        elif e.serving and e.terminating:
            has_any = True
            local_fallback = local_fallback or e.is_local
    local: tuple[Endpoint, ...] = ()
    if local_ready:
        local = tuple(e for e in endpoints if e.is_local and e.ready)
    elif local_fallback:
        local = tuple(e for e in endpoints if e.is_local and e.serving and e.terminating)
    if not svc.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    seen = set(cluster)
    union = cluster + tuple(e for e in local if e not in seen)
    return Categorized(cluster, local, union, has_any)
