"""ClusterIP and NodePort allocation for Services.

Several API servers may share one store (etcd), so no server can keep what is in
use in memory: every address or port handed out is *claimed* with a key of its
own in the store (`/registry/allocations/...`, like upstream's IPAddress
objects), created atomically, and the claims are the only record consulted when
allocating: a server that loses the race for a candidate moves on to the next.
So a create costs a few point operations, however many Services exist. At start
every server claims the addresses of stored Services that have none (written
before claims existed); that pass is idempotent.

A claim names its Service (namespace, name, uid). One whose Service is gone or no
longer uses the address (deleted, its create failed on another server, a release
that failed) is taken over once it is older than CLAIM_GRACE_SECONDS, so a claim
for a Service still being written elsewhere is never stolen.

Like upstream, dynamic allocation starts at a random point of the range's upper
band and reaches the lower band only when the upper one is full, so addresses
and ports users pick themselves (the lower band) rarely collide with dynamic ones.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.api.errors import FieldCause, invalid
from controlplane.api.resources import SERVICES
from controlplane.storage.interface import ConflictError, KeyExistsError, KeyNotFoundError, Store

SERVICES_PREFIX = SERVICES.storage_prefix()
IP_CLAIMS = "/registry/allocations/serviceips/"
PORT_CLAIMS = "/registry/allocations/servicenodeports/"
CLAIM_GRACE_SECONDS = 60.0

log = logging.getLogger(__name__)


def static_band(size: int, step: int, low: int, high: int) -> int:
    """How many values at the bottom of a range are kept for users' own picks:
    size/step, at least `low`, at most `high` (upstream: 16/256 for IPs, 16/128 for node ports)."""
    return min(max(low, size // step), high)


def band_order(size: int, reserved: int, rng: random.Random) -> Iterator[int]:
    """Offsets 0..size-1: the upper band from a random point (wrapping inside it), then the lower band
    from a random point. A range smaller than the band is all lower band."""
    reserved = min(reserved, size)
    for begin, count in ((reserved, size - reserved), (0, reserved)):
        if count <= 0:
            continue
        first = rng.randrange(count)
        for i in range(count):
            yield begin + (first + i) % count


@dataclass
class _Owner:
    """The Service an allocation is for, and the claims this allocation created or took over."""
    namespace: str
    name: str
    uid: str
    dry_run: bool = False  # only check: claim nothing, as a dry-run request asks
    taken: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, svc: dict[str, Any], dry_run: bool = False) -> _Owner:
        md = svc.get("metadata") or {}
        return cls(md.get("namespace") or "", md.get("name") or "", md.get("uid") or "", dry_run)

    def claim_value(self) -> bytes:
        return orjson.dumps({"namespace": self.namespace, "name": self.name, "uid": self.uid,
                             "claimedAt": time.time()})


class ServiceAllocator:
    def __init__(self, store: Store, service_cidr: str, node_port_range: str,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.network = ipaddress.ip_network(service_cidr)
        low, _, high = node_port_range.partition("-")
        self.port_low, self.port_high = int(low), int(high or low)
        self.rng = rng or random.Random()

    @property
    def first_ip(self) -> str:
        """The `kubernetes` Service's address: the first usable IP of the range."""
        return str(self.network.network_address + 1)

    async def claim_stored_services(self) -> int:
        """Claim the addresses of stored Services that hold no claim (or one of the old format, without
        the Service's name). Returns how many claims were written."""
        claims = {kv.key: kv for prefix in (IP_CLAIMS, PORT_CLAIMS) for kv in (await self.store.list(prefix)).items}
        written = 0
        for kv in (await self.store.list(SERVICES_PREFIX)).items:
            svc = orjson.loads(kv.value)
            owner = _Owner.of(svc)
            for key in set(_claim_keys(svc)):
                try:
                    held = claims.get(key)
                    if held is None:
                        await self.store.create(key, owner.claim_value())
                        written += 1
                        continue
                    claim = orjson.loads(held.value)
                    if claim.get("uid") == owner.uid and claim.get("name") != owner.name:
                        await self.store.update(key, owner.claim_value(), expected_mod_revision=held.mod_revision)
                        written += 1
                    elif claim.get("uid") != owner.uid:
                        log.warning("Service %s/%s uses %s, which is claimed for another Service (uid %s)",
                                    owner.namespace, owner.name, key, claim.get("uid"))
                except (KeyExistsError, KeyNotFoundError, ConflictError):
                    pass  # another server wrote it meanwhile: its claim is current
        return written

    async def _owner_still_uses(self, key: str, claim: dict[str, Any]) -> bool:
        namespace, name = claim.get("namespace"), claim.get("name")
        if not name:
            return False  # a claim without its Service's name cannot be checked: the grace decides
        try:
            stored = orjson.loads((await self.store.get(SERVICES.storage_key(namespace, name))).value)
        except KeyNotFoundError:
            return False
        return (stored.get("metadata") or {}).get("uid") == claim.get("uid") and key in set(_claim_keys(stored))

    async def _stands(self, key: str, claim: dict[str, Any]) -> bool:
        """Whether another Service's claim must be respected: its Service uses the address, or may still
        be being written by another server."""
        return time.time() - float(claim.get("claimedAt", 0)) < CLAIM_GRACE_SECONDS \
            or await self._owner_still_uses(key, claim)

    async def _claim(self, key: str, owner: _Owner) -> bool:
        """Take the claim `key` for `owner`: True if it is now (or already was) that Service's. For a dry
        run: True if it could be taken, and nothing is written."""
        if owner.dry_run:
            try:
                claim = orjson.loads((await self.store.get(key)).value)
            except KeyNotFoundError:
                return True
            return claim.get("uid") == owner.uid or not await self._stands(key, claim)
        try:
            await self.store.create(key, owner.claim_value())
            owner.taken.append(key)
            return True
        except KeyExistsError:
            pass
        try:
            held = await self.store.get(key)
        except KeyNotFoundError:
            return False  # released this instant; another candidate will do
        claim = orjson.loads(held.value)
        if claim.get("uid") == owner.uid:
            return True
        if await self._stands(key, claim):
            return False
        try:
            await self.store.update(key, owner.claim_value(), expected_mod_revision=held.mod_revision)
        except (ConflictError, KeyNotFoundError):
            return False  # another server took it over first
        owner.taken.append(key)
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

    async def allocate(self, svc: dict[str, Any], old: dict[str, Any] | None = None, *,
                       dry_run: bool = False) -> None:
        """Fill spec.clusterIP(s) and nodePorts in place and claim them; 422 for taken or out-of-range
        requests. A dry run fills and checks them as well (upstream shows the addresses a create would
        get) but claims nothing, so a real create may get others."""
        spec = svc.setdefault("spec", {})
        owner = _Owner.of(svc, dry_run)
        svc_type = spec.get("type", "ClusterIP")
        try:
            if svc_type != "ExternalName":
                await self._allocate_ip(spec, owner, keep=(old or {}).get("spec", {}).get("clusterIP"))
            if svc_type in ("NodePort", "LoadBalancer"):
                await self._allocate_node_ports(spec, owner)
            elif svc_type == "ClusterIP":
                for port in spec.get("ports") or []:
                    port.pop("nodePort", None)
        except BaseException:
            await self._drop_claims(owner.taken, owner.uid)  # refused part-way: give back what this call took
            raise

    async def _allocate_ip(self, spec: dict[str, Any], owner: _Owner, keep: str | None) -> None:
        requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if requested and requested == keep:
            spec["clusterIPs"] = [requested]
            await self._claim(IP_CLAIMS + requested, owner)  # its own: re-asserted, should it have been lost
            return
        if requested:
            try:
                address = ipaddress.ip_address(requested)
            except ValueError:
                raise invalid("Service", owner.name, [FieldCause(
                    "spec.clusterIPs[0]", f'Invalid value: "{requested}": must be a valid IP address')]) from None
            if address not in self.network or address in (self.network.network_address,
                                                           self.network.broadcast_address):
                raise invalid("Service", owner.name, [FieldCause(
                    "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                    f"the provided IP ({requested}) is not in the valid range. The range of valid IPs is "
                    f"{self.network}")])
            if not await self._claim(IP_CLAIMS + requested, owner):
                raise invalid("Service", owner.name, [FieldCause(
                    "spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP {requested}: '
                    "provided IP is already allocated")])
            spec["clusterIP"], spec["clusterIPs"] = requested, [requested]
            return
        # Usable offsets: 1 .. size-2 (no network or broadcast address; IPv6 keeps the last one),
        # and never the first, which is the `kubernetes` Service's.
        size = self.network.num_addresses
        usable = size - 2 if self.network.version == 4 else size - 1
        base = self.network.network_address + 2
        for offset in band_order(usable - 1, static_band(usable, 16, 16, 256), self.rng):
            candidate = str(base + offset)
            if await self._claim(IP_CLAIMS + candidate, owner):
                spec["clusterIP"], spec["clusterIPs"] = candidate, [candidate]
                return
        raise invalid("Service", owner.name, [FieldCause("spec.clusterIPs", "failed to allocate a serviceIP: "
                                                         "range is full")])

    async def _allocate_node_ports(self, spec: dict[str, Any], owner: _Owner) -> None:
        """One node port per distinct service port: ports that share a number (TCP and UDP of a DNS
        Service) share the node port, the first requested one if any, as upstream."""
        ports = spec.get("ports") or []
        shared: dict[Any, int] = {}
        for port in ports:
            if port.get("nodePort"):
                shared.setdefault(port.get("port"), int(port["nodePort"]))
        chosen: dict[int, Any] = {}  # node port -> the service port number it serves
        size = self.port_high - self.port_low + 1
        for i, port in enumerate(ports):
            requested = port.get("nodePort")
            if requested:
                requested = int(requested)
                if not self.port_low <= requested <= self.port_high:
                    raise invalid("Service", owner.name, [FieldCause(
                        f"spec.ports[{i}].nodePort", f"Invalid value: {requested}: provided port is not in the "
                        f"valid range. The range of valid ports is {self.port_low}-{self.port_high}")])
                if requested in chosen:
                    taken = chosen[requested] != port.get("port")  # the same port number may share it
                else:
                    taken = not await self._claim(PORT_CLAIMS + str(requested), owner)
                if taken:
                    raise invalid("Service", owner.name, [FieldCause(
                        f"spec.ports[{i}].nodePort", f"Invalid value: {requested}: provided port is already "
                        "allocated")])
                chosen[requested] = port.get("port")
                continue
            if port.get("port") in shared:
                port["nodePort"] = shared[port.get("port")]
                continue  # claimed with (or before) the port it shares
            for offset in band_order(size, static_band(size, 32, 16, 128), self.rng):
                candidate = self.port_low + offset
                if candidate not in chosen and await self._claim(PORT_CLAIMS + str(candidate), owner):
                    port["nodePort"] = shared[port.get("port")] = candidate
                    chosen[candidate] = port.get("port")
                    break
            else:
                raise invalid("Service", owner.name, [FieldCause(f"spec.ports[{i}].nodePort", "range is full")])


def _claim_keys(svc: dict[str, Any] | None) -> Iterable[str]:
    spec = (svc or {}).get("spec") or {}
    for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
        if ip and ip != "None":
            yield IP_CLAIMS + ip
    for port in spec.get("ports") or []:
        if port.get("nodePort"):
            yield PORT_CLAIMS + str(int(port["nodePort"]))
