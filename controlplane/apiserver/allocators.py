"""ClusterIP and NodePort allocation for Services.

What is in use is read from the stored Services at the moment of allocation, so
it survives restarts and needs no bitmap that could drift. Several API servers
may share one store (etcd), and each would see the same free address: so every
address or port handed out is also *claimed* with a key of its own in the store
(`/registry/allocations/...`, like upstream's IPAddress objects), created
atomically; a server that loses the race moves on to the next candidate. A claim
names the Service it was made for; one whose Service no longer exists (deleted,
or its create failed on another server) is taken over once it is older than
CLAIM_GRACE_SECONDS, so a claim for a Service still being written elsewhere is
never stolen. One lock serializes allocations inside an API server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.api.errors import FieldCause, invalid
from controlplane.storage.interface import ConflictError, KeyExistsError, KeyNotFoundError, KeyValue, Store

SERVICES_PREFIX = "/registry/services/"
IP_CLAIMS = "/registry/allocations/serviceips/"
PORT_CLAIMS = "/registry/allocations/servicenodeports/"
CLAIM_GRACE_SECONDS = 60.0


@dataclass
class _InUse:
    ips: set[str]
    ports: set[int]
    live_uids: set[str]
    claims: dict[str, KeyValue]  # claim key -> stored claim
    taken: list[str] = field(default_factory=list)  # claim keys this allocation created or took over


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

    async def _in_use(self, exclude_uid: str | None = None) -> _InUse:
        ips: set[str] = set()
        ports: set[int] = set()
        uids: set[str] = set()
        for kv in (await self.store.list(SERVICES_PREFIX)).items:
            svc = orjson.loads(kv.value)
            uid = svc.get("metadata", {}).get("uid") or ""
            uids.add(uid)
            if exclude_uid and uid == exclude_uid:
                continue
            spec = svc.get("spec") or {}
            ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None")
            ports.update(int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort"))
        claims = {kv.key: kv for prefix in (IP_CLAIMS, PORT_CLAIMS)
                  for kv in (await self.store.list(prefix)).items}
        return _InUse(ips, ports, uids, claims)

    async def _claim(self, key: str, uid: str, used: _InUse) -> bool:
        """Take the claim `key` for the Service `uid`: True if it is now (or already was) that Service's."""
        value = orjson.dumps({"uid": uid, "claimedAt": time.time()})
        held = used.claims.get(key)
        if held is not None:
            claim = orjson.loads(held.value)
            if claim.get("uid") == uid:
                return True
            if claim.get("uid") in used.live_uids or time.time() - float(claim.get("claimedAt", 0)) \
                    < CLAIM_GRACE_SECONDS:
                return False  # its Service exists, or may still be being written by another server
            try:
                used.claims[key] = await self.store.update(key, value, expected_mod_revision=held.mod_revision)
            except (ConflictError, KeyNotFoundError):
                return False  # another server took it over first
            used.taken.append(key)
            return True
        try:
            used.claims[key] = await self.store.create(key, value)
        except KeyExistsError:
            return False  # claimed by another server since we looked
        used.taken.append(key)
        return True

    async def release(self, svc: dict[str, Any], keep: dict[str, Any] | None = None) -> None:
        """Drop the claims `svc` holds that `keep` (its stored successor, if any) does not use."""
        kept = set(_claim_keys(keep)) if keep is not None else set()
        await self._drop_claims([key for key in _claim_keys(svc) if key not in kept],
                                svc.get("metadata", {}).get("uid") or "")

    async def _drop_claims(self, keys: Iterable[str], uid: str) -> None:
        for key in keys:
            try:
                held = await self.store.get(key)
                if orjson.loads(held.value).get("uid") == uid:
                    await self.store.delete(key, expected_mod_revision=held.mod_revision)
            except (KeyNotFoundError, ConflictError):
                pass

    async def allocate(self, svc: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        """Fill spec.clusterIP(s) and nodePorts in place and claim them; 422 for taken or out-of-range
        requests."""
        spec = svc.setdefault("spec", {})
        name = svc.get("metadata", {}).get("name", "")
        uid = svc.get("metadata", {}).get("uid") or ""
        svc_type = spec.get("type", "ClusterIP")
        async with self.lock:
            used = await self._in_use(exclude_uid=(old or {}).get("metadata", {}).get("uid"))
            try:
                if svc_type != "ExternalName":
                    await self._allocate_ip(spec, used, name, uid, keep=(old or {}).get("spec", {}).get("clusterIP"))
                if svc_type in ("NodePort", "LoadBalancer"):
                    await self._allocate_node_ports(spec, used, name, uid)
                elif svc_type == "ClusterIP":
                    for port in spec.get("ports") or []:
                        port.pop("nodePort", None)
            except BaseException:
                await self._drop_claims(used.taken, uid)  # refused part-way: give back what this call took
                raise

    async def _allocate_ip(self, spec: dict[str, Any], used: _InUse, name: str, uid: str, keep: str | None) -> None:
        requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if requested and requested == keep:
            spec["clusterIPs"] = [requested]
            await self._claim(IP_CLAIMS + requested, uid, used)  # a Service stored before claims existed
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
            if requested in used.ips or not await self._claim(IP_CLAIMS + requested, uid, used):
                raise invalid("Service", name, [FieldCause(
                    "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                    "provided IP is already allocated")])
            spec["clusterIP"], spec["clusterIPs"] = requested, [requested]
            return
        for host in self.network.hosts():
            candidate = str(host)
            if candidate != self.first_ip and candidate not in used.ips \
                    and await self._claim(IP_CLAIMS + candidate, uid, used):
                spec["clusterIP"], spec["clusterIPs"] = candidate, [candidate]
                return
        raise invalid("Service", name, [FieldCause("spec.clusterIPs", "failed to allocate a serviceIP: "
                                                   "range is full")])

    async def _allocate_node_ports(self, spec: dict[str, Any], used: _InUse, name: str, uid: str) -> None:
        taken = set(used.ports)
        for i, port in enumerate(spec.get("ports") or []):
            requested = port.get("nodePort")
            if requested:
                if not self.port_low <= int(requested) <= self.port_high:
                    raise invalid("Service", name, [FieldCause(
                        f"spec.ports[{i}].nodePort", f"Invalid value: {requested}: provided port is not in the "
                        f"valid range. The range of valid ports is {self.port_low}-{self.port_high}")])
                if int(requested) in taken or not await self._claim(PORT_CLAIMS + str(int(requested)), uid, used):
                    raise invalid("Service", name, [FieldCause(
                        f"spec.ports[{i}].nodePort", f"Invalid value: {requested}: provided port is already "
                        "allocated")])
                taken.add(int(requested))
                continue
            for candidate in range(self.port_low, self.port_high + 1):
                if candidate not in taken and await self._claim(PORT_CLAIMS + str(candidate), uid, used):
                    port["nodePort"] = candidate
                    taken.add(candidate)
                    break
            else:
                raise invalid("Service", name, [FieldCause(f"spec.ports[{i}].nodePort",
                                                           "range is full")])


def _claim_keys(svc: dict[str, Any] | None) -> Iterable[str]:
    spec = (svc or {}).get("spec") or {}
    for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
        if ip and ip != "None":
            yield IP_CLAIMS + ip
    for port in spec.get("ports") or []:
        if port.get("nodePort"):
            yield PORT_CLAIMS + str(int(port["nodePort"]))
