"""IPVS mode: virtual servers through netlink (pyroute2), the dummy device kube-ipvs0, an nft companion.

Only where the kernel has ip_vs: detection follows upstream's order of evidence
(/proc/net/ip_vs, /sys/module/ip_vs, then one `modprobe ip_vs`), and without it
the mode refuses to start with the reason.

A sync reads kube-ipvs0's addresses (creating the device, left DOWN, when it is
missing) and, on full syncs, every virtual server with its real servers; then it
applies only the difference `ipvs_render.diff` computes: new addresses, new or
changed virtual and real servers, the companion table (`nft -f`, replaced in one
transaction, through the same loader as nftables mode), then removals. Virtual
servers this proxy does not own (see `ipvs_render.owned`) are never touched, so
a restart, even after SIGKILL, converges to exactly the wanted state.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from netproxy import execs
from netproxy.backend import ModeUnavailable, SyncStats
from netproxy.ipvs_render import (
    DEVICE,
    PERSISTENT_FLAG,
    PROTOCOL_NAMES,
    PROTOCOL_NUMBERS,
    TABLE,
    IpvsOptions,
    IpvsState,
    Plan,
    RealServer,
    VirtualServer,
    VirtualServerKey,
    build,
    companion_script,
    diff,
    element_count,
    owned,
)
from netproxy.tracker import Snapshot

log = logging.getLogger(__name__)

# Upstream sets these in IPVS mode: connections through IPVS get conntrack entries (so that
# the companion table can masquerade them), and connections to removed real servers or
# expired persistence templates are dropped at once instead of lingering.
SYSCTLS = {"net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1",
           "net/ipv4/vs/expire_quiescent_template": "1"}
AF_INET = 2


def ipvs_available() -> tuple[bool, str]:
    """(available, why) — `why` says what was looked at when it is not."""
    if Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists():
        return True, "ip_vs is loaded"
    try:
        probe = subprocess.run(["modprobe", "ip_vs"], capture_output=True, text=True, timeout=30)
        detail = probe.stderr.strip() or f"exit code {probe.returncode}"
    except (OSError, subprocess.SubprocessError) as exc:
        detail = str(exc)
    if Path("/proc/net/ip_vs").exists():
        return True, "ip_vs loaded by modprobe"
    return False, (f"the kernel has no IPVS: /proc/net/ip_vs and /sys/module/ip_vs are absent and "
                   f"`modprobe ip_vs` failed ({detail})")


def ip_vs_loaded() -> bool:
    """Whether IPVS is usable now, without trying to load it."""
    return Path("/proc/net/ip_vs").exists()


def refuse(why: str | None = None) -> ModeUnavailable:
    """The error `--proxy-mode ipvs` ends with where IPVS cannot be used."""
    if why is None:
        why = ipvs_available()[1]
    return ModeUnavailable(f"proxy mode ipvs is not available: {why}; use --proxy-mode iptables or nftables")


# -- kube-ipvs0 and the node's addresses (rtnetlink) ---------------------------------------------


@dataclass
class Addresses:
    """kube-ipvs0's IPv4 addresses (with prefix length) and every other local IPv4 address."""

    device_index: int | None
    device: set[tuple[str, int]]
    others: list[str]

    @property
    def device_ips(self) -> set[str]:
        return {ip for ip, _ in self.device}


async def read_addresses(ipr: Any) -> Addresses:
    found = await ipr.link_lookup(ifname=DEVICE)
    index = found[0] if found else None
    device: set[tuple[str, int]] = set()
    others: set[str] = set()
    async for msg in await ipr.addr("dump", family=AF_INET):
        ip = msg.get("address")
        if not ip:
            continue
        if msg["index"] == index:
            device.add((ip, int(msg["prefixlen"])))
        else:
            others.add(ip)
    return Addresses(index, device, sorted(others, key=lambda a: int(ipaddress.IPv4Address(a))))


async def ensure_device(ipr: Any) -> int:
    """kube-ipvs0's index; a dummy device is created (and left DOWN, as upstream) when missing."""
    found = await ipr.link_lookup(ifname=DEVICE)
    if found:
        return int(found[0])
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        await ipr.link("add", ifname=DEVICE, kind="dummy")
    except NetlinkError as exc:
        raise RuntimeError(f"cannot create the dummy device {DEVICE}: {exc}") from exc
    found = await ipr.link_lookup(ifname=DEVICE)
    if not found:
        raise RuntimeError(f"{DEVICE} was created but cannot be found")
    log.info("created the dummy device %s", DEVICE)
    return int(found[0])


async def change_addresses(ipr: Any, index: int, add: list[str], remove: list[tuple[str, int]]) -> None:
    for ip in add:
        await ipr.addr("add", index=index, address=ip, prefixlen=32)
    for ip, prefixlen in remove:
        await ipr.addr("del", index=index, address=ip, prefixlen=prefixlen)


async def sync_device_addresses(wanted: set[str]) -> tuple[list[str], list[str]]:
    """Make kube-ipvs0 (created if missing) hold exactly `wanted` as /32s; returns (added, removed)."""
    from pyroute2 import AsyncIPRoute

    async with AsyncIPRoute() as ipr:
        index = await ensure_device(ipr)
        current = (await read_addresses(ipr)).device
        add = sorted(wanted - {ip for ip, plen in current if plen == 32})
        remove = sorted(a for a in current if a[1] != 32 or a[0] not in wanted)
        await change_addresses(ipr, index, add, remove)
    return add, [ip for ip, _ in remove]


def node_ips(addrs: Addresses, cidrs: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(addresses for NodePort virtual servers, --nodeport-addresses IPs or None for "every local one")."""
    own = addrs.device_ips
    candidates = [ip for ip in addrs.others if ip not in own and not ip.startswith("127.")]
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs if c.strip()]
    nets = [n for n in nets if n.version == 4]
    if not nets or any(n.prefixlen == 0 for n in nets):
        return tuple(candidates), None
    chosen = tuple(ip for ip in candidates if any(ipaddress.IPv4Address(ip) in n for n in nets))
    return chosen, chosen


# -- IPVS (generic netlink) -------------------------------------------------------------------------


def service_request(server: VirtualServer | VirtualServerKey) -> Any:
    from pyroute2 import IPVSService

    key = server if isinstance(server, VirtualServerKey) else server.key
    fields: dict[str, Any] = {"addr": key.ip, "port": key.port, "protocol": PROTOCOL_NUMBERS[key.protocol]}
    if isinstance(server, VirtualServer):
        fields.update(sched_name=server.scheduler, timeout=server.persistence,
                      flags={"flags": PERSISTENT_FLAG if server.persistence else 0, "mask": 0xFFFF})
    return IPVSService(**fields)


def dest_request(real: RealServer) -> Any:
    from pyroute2 import IPVSDest

    return IPVSDest(addr=real.ip, port=real.port, weight=real.weight, fwd_method=real.forwarding)


def server_from_message(msg: Any) -> VirtualServer | None:
    """A virtual server from a dump message; None for what this proxy never makes (fwmark, IPv6, ...)."""
    attrs = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    if attrs is None or attrs.get_attr("IPVS_SVC_ATTR_AF") != AF_INET:
        return None
    ip, port = attrs.get_attr("IPVS_SVC_ATTR_ADDR"), attrs.get_attr("IPVS_SVC_ATTR_PORT")
    protocol = PROTOCOL_NAMES.get(attrs.get_attr("IPVS_SVC_ATTR_PROTOCOL") or 0)
    if not ip or not port or protocol is None or attrs.get_attr("IPVS_SVC_ATTR_FWMARK"):
        return None
    flags = attrs.get_attr("IPVS_SVC_ATTR_FLAGS")
    persistent = bool(flags is not None and int(flags["flags"]) & PERSISTENT_FLAG)
    timeout = int(attrs.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0)
    return VirtualServer(VirtualServerKey(ip, protocol, int(port)), attrs.get_attr("IPVS_SVC_ATTR_SCHED_NAME") or "",
                         timeout if persistent else 0)


def real_from_message(msg: Any) -> RealServer | None:
    attrs = msg.get_attr("IPVS_CMD_ATTR_DEST")
    if attrs is None:
        return None
    ip, port = attrs.get_attr("IPVS_DEST_ATTR_ADDR"), attrs.get_attr("IPVS_DEST_ATTR_PORT")
    if not ip or port is None:
        return None
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        return None
    return RealServer(ip, int(port), int(attrs.get_attr("IPVS_DEST_ATTR_WEIGHT") or 0),
                      int(attrs.get_attr("IPVS_DEST_ATTR_FWD_METHOD") or 0))


class IpvsNetlink:
    """One generic-netlink IPVS socket of the proxy's namespace."""

    def __init__(self) -> None:
        from pyroute2.ipvs import AsyncIPVS

        self.sock = AsyncIPVS()

    async def __aenter__(self) -> IpvsNetlink:
        try:
            await self.sock.setup_endpoint()  # binds the IPVS family: fails without ip_vs
        except BaseException:
            self.sock.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sock.close()

    async def dump(self, wanted: set[VirtualServerKey], is_ours: Any) -> dict[VirtualServerKey, VirtualServer]:
        """Every virtual server; real servers are read for the wanted ones and ours only."""
        servers: dict[VirtualServerKey, VirtualServer] = {}
        for msg in await self.sock.service("dump"):
            server = server_from_message(msg)
            if server is None:
                continue
            if server.key in wanted or is_ours(server.key):
                reals = [r for r in map(real_from_message, await self.sock.dest("dump", service=service_request(
                    server.key))) if r is not None]
                server = replace(server, reals=tuple(sorted(reals, key=RealServer.order)))
            servers[server.key] = server
        return servers

    async def add_server(self, server: VirtualServer) -> None:
        await self.sock.service("add", service=service_request(server))

    async def update_server(self, server: VirtualServer) -> None:
        await self.sock.service("set", service=service_request(server))

    async def delete_server(self, key: VirtualServerKey) -> None:
        await self.sock.service("del", service=service_request(key))

    async def add_real(self, key: VirtualServerKey, real: RealServer) -> None:
        await self.sock.dest("add", service=service_request(key), dest=dest_request(real))

    async def update_real(self, key: VirtualServerKey, real: RealServer) -> None:
        await self.sock.dest("set", service=service_request(key), dest=dest_request(real))

    async def delete_real(self, key: VirtualServerKey, real: RealServer) -> None:
        await self.sock.dest("del", service=service_request(key), dest=dest_request(real))


def set_sysctls() -> None:
    for name, value in SYSCTLS.items():
        path = Path("/proc/sys") / name
        try:
            if path.read_text().strip() != value:
                path.write_text(value)
        except OSError as exc:
            log.warning("cannot set %s=%s: %s", name.replace("/", "."), value, exc)


async def load_companion(script: str) -> None:
    """Replace the companion table (one `nft -f` transaction: all of it or nothing)."""
    await execs.run(["nft", "-f", "-"], stdin=script)


async def delete_companion() -> None:
    await execs.run(["nft", "delete", "table", "ip", TABLE], check=False)


# -- the backend -----------------------------------------------------------------------------------


class IpvsBackend:
    mode = "ipvs"
    # IPVS rewrites the reply tuple of a connection's conntrack entry itself (no NAT status bits):
    # stale UDP entries are matched by their reply source
    conntrack_nat_match = "--reply-src"

    def __init__(self, opts: IpvsOptions, nodeport_cidrs: tuple[str, ...] = ()) -> None:
        self.opts = opts
        self.nodeport_cidrs = nodeport_cidrs
        self._servers: dict[VirtualServerKey, VirtualServer] | None = None  # ours, as last applied
        self._programmed: set[VirtualServerKey] = set()
        self._script: str | None = None
        self.last_plan = Plan()
        self.last_script = ""  # the companion table of the last sync

    def check(self) -> None:
        ok, why = ipvs_available()
        if not ok:
            raise refuse(why)
        if not execs.have("nft"):
            raise ModeUnavailable("ipvs mode needs nft for its masquerade and reject rules "
                                  "(Debian package nftables)")

    async def sync(self, snap: Snapshot) -> SyncStats:
        from pyroute2 import AsyncIPRoute

        full = snap.changed is None or self._servers is None
        try:
            async with AsyncIPRoute() as ipr:
                index = await ensure_device(ipr)
                addrs = await read_addresses(ipr)
                nodes, nodeport_ips = node_ips(addrs, self.nodeport_cidrs)
                self.opts = replace(self.opts, node_ips=nodes, nodeport_ips=nodeport_ips)
                desired = build(snap, self.opts)
                async with IpvsNetlink() as ipvs:
                    if full:
                        set_sysctls()
                        device_ips = addrs.device_ips | desired.ipvs.addresses

                        def is_ours(key: VirtualServerKey) -> bool:
                            return owned(key, device_ips, nodes, self._programmed)

                        servers = await ipvs.dump(set(desired.ipvs.servers), is_ours)
                    else:
                        assert self._servers is not None
                        servers = self._servers
                    current = IpvsState({ip for ip, plen in addrs.device if plen == 32}, servers)
                    plan = diff(current, desired.ipvs, nodes, self._programmed)
                    odd = sorted(a for a in addrs.device if a[1] != 32)
                    self.last_plan = plan
                    script = self.last_script = companion_script(desired.companion, self.opts)
                    await self._apply(ipr, index, ipvs, plan, odd, script, full)
        except Exception:
            self._servers = None  # unknown now: the next sync reads the kernel again
            self._script = None
            raise
        self._servers = dict(desired.ipvs.servers)
        # ours from now on even if the node address they sit on goes away
        self._programmed = (self._programmed | set(desired.ipvs.servers)) - set(plan.del_servers)
        reals = sum(len(s.reals) for s in desired.ipvs.servers.values())
        return SyncStats({"virtual_servers": len(desired.ipvs.servers), "real_servers": reals,
                          "addresses": len(desired.ipvs.addresses),
                          "nft_elements": element_count(desired.companion)},
                         desired.no_local_internal, desired.no_local_external)

    async def _apply(self, ipr: Any, index: int, ipvs: IpvsNetlink, plan: Plan, odd: list[tuple[str, int]],
                     script: str, full: bool) -> None:
        await change_addresses(ipr, index, plan.add_addresses, [])
        for server in plan.add_servers:
            await ipvs.add_server(server)
            self._programmed.add(server.key)
        for server in plan.update_servers:
            await ipvs.update_server(server)
        for key, real in plan.add_reals:
            await ipvs.add_real(key, real)
        for key, real in plan.update_reals:
            await ipvs.update_real(key, real)
        for key, real in plan.del_reals:
            await ipvs.delete_real(key, real)
        if full or script != self._script:
            await load_companion(script)
            self._script = script
        for key in plan.del_servers:
            await ipvs.delete_server(key)
            self._programmed.discard(key)
        await change_addresses(ipr, index, [], [(ip, 32) for ip in plan.del_addresses] + odd)
        if plan:
            log.debug("ipvs changes: %s", "; ".join(plan.lines()))

    async def cleanup(self) -> None:
        """Remove everything this mode creates (`pyk8s proxy --cleanup`, or a switch to another mode)."""
        await cleanup_leftovers()


async def cleanup_leftovers() -> list[str]:
    """Remove what IPVS mode creates: its virtual servers, kube-ipvs0, the companion table. Safe
    without ip_vs (then there are no virtual servers to look at). Returns what was removed."""
    from pyroute2 import AsyncIPRoute

    removed: list[str] = []
    if execs.have("nft") and (await execs.run(["nft", "list", "table", "ip", TABLE], check=False)).code == 0:
        await delete_companion()
        removed.append(f"table ip {TABLE}")
    async with AsyncIPRoute() as ipr:
        addrs = await read_addresses(ipr)
        if ip_vs_loaded():
            nodes, _ = node_ips(addrs, ())
            device_ips = addrs.device_ips
            async with IpvsNetlink() as ipvs:
                servers = await ipvs.dump(set(), lambda key: False)
                for key in sorted(servers, key=VirtualServerKey.order):
                    if owned(key, device_ips, nodes):
                        await ipvs.delete_server(key)
                        removed.append(f"virtual server {key}")
        if addrs.device_index is not None:
            await ipr.link("del", index=addrs.device_index)
            removed.append(DEVICE)
    return removed


async def has_leftovers() -> bool:
    """Whether IPVS mode left anything here (cheap checks, no IPVS socket)."""
    from pyroute2 import AsyncIPRoute

    if execs.have("nft") and (await execs.run(["nft", "list", "table", "ip", TABLE], check=False)).code == 0:
        return True
    async with AsyncIPRoute() as ipr:
        return bool(await ipr.link_lookup(ifname=DEVICE))

