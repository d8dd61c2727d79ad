"""ClusterIP and NodePort allocation for Services.

Allocations are derived from the Services stored at the moment of allocation
(there is no separate bitmap to drift out of sync), so they survive restarts
and a deleted Service's addresses are free again at once. One lock serializes
allocations inside an API server; the store's create precondition on the
Service key makes the write itself atomic.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import orjson

from controlplane.api.errors import FieldCause, invalid
from controlplane.storage.interface import Store

SERVICES_PREFIX = "/registry/services/"


class ServiceAllocator:
    def __init__(self, store: Store, service_cidr: str, node_port_range: str) -> None:
        self.store = store
        self.network = ipaddress.ip_network(service_cidr)
        low, _, high = node_port_range.partition("-")
        self.port_low, self.port_high = int(low), int(high or low)
        self.lock = asyncio.Lock()

    @property
    def first_ip(self) -> str:
        """The `kubernetes` Service's address: the first usable IP of the range."""
        return str(self.network.network_address + 1)

    async def _in_use(self, exclude_uid: str | None = None) -> tuple[set[str], set[int]]:
        ips: set[str] = set()
        ports: set[int] = set()
        for kv in (await self.store.list(SERVICES_PREFIX)).items:
            svc = orjson.loads(kv.value)
            if exclude_uid and svc.get("metadata", {}).get("uid") == exclude_uid:
                continue
            spec = svc.get("spec") or {}
            ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None")
            ports.update(int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort"))
        return ips, ports

    async def allocate(self, svc: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        """Fill spec.clusterIP(s) and nodePorts in place; 422 for taken or out-of-range requests."""
        spec = svc.setdefault("spec", {})
        name = svc.get("metadata", {}).get("name", "")
        svc_type = spec.get("type", "ClusterIP")
        async with self.lock:
            ips, ports = await self._in_use(exclude_uid=(old or {}).get("metadata", {}).get("uid"))
            if svc_type != "ExternalName":
                self._allocate_ip(spec, ips, name, keep=(old or {}).get("spec", {}).get("clusterIP"))
            if svc_type in ("NodePort", "LoadBalancer"):
                self._allocate_node_ports(spec, ports, name)
            elif svc_type == "ClusterIP":
                for port in spec.get("ports") or []:
                    port.pop("nodePort", None)

    def _allocate_ip(self, spec: dict[str, Any], used: set[str], name: str, keep: str | None) -> None:
        requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if requested and requested == keep:
            spec["clusterIPs"] = [requested]
            return
        if requested:
            try:
                address = ipaddress.ip_address(requested)
            except ValueError:
                raise invalid("Service", name, [FieldCause("spec.clusterIPs[0]", f'Invalid value: "{requested}": '
                                                           "must be a valid IP address")]) from None
            if address not in self.network or address in (self.network.network_address,
                                                           self.network.broadcast_address):
                raise invalid("Service", name, [FieldCause(
                    "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                    f"the provided IP ({requested}) is not in the valid range. The range of valid IPs is "
                    f"{self.network}")])
            if requested in used:
                raise invalid("Service", name, [FieldCause(
                    "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                    "provided IP is already allocated")])
            spec["clusterIP"], spec["clusterIPs"] = requested, [requested]
            return
        for host in self.network.hosts():
            candidate = str(host)
            if candidate != self.first_ip and candidate not in used:
                spec["clusterIP"], spec["clusterIPs"] = candidate, [candidate]
                return
        raise invalid("Service", name, [FieldCause("spec.clusterIPs", "failed to allocate a serviceIP: "
                                                   "range is full")])

    def _allocate_node_ports(self, spec: dict[str, Any], used: set[int], name: str) -> None:
        taken = set(used)
        for i, port in enumerate(spec.get("ports") or []):
            requested = port.get("nodePort")
            if requested:
                if not self.port_low <= int(requested) <= self.port_high:
                    raise invalid("Service", name, [FieldCause(
                        f"spec.ports[{i}].nodePort", f"Invalid value: {requested}: provided port is not in the "
                        f"valid range. The range of valid ports is {self.port_low}-{self.port_high}")])
                if int(requested) in taken:
                    raise invalid("Service", name, [FieldCause(
                        f"spec.ports[{i}].nodePort", f"Invalid value: {requested}: provided port is already "
                        "allocated")])
                taken.add(int(requested))
                continue
            for candidate in range(self.port_low, self.port_high + 1):
                if candidate not in taken:
                    port["nodePort"] = candidate
                    taken.add(candidate)
                    break
            else:
                raise invalid("Service", name, [FieldCause(f"spec.ports[{i}].nodePort",
                                                           "range is full")])
