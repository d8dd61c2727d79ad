"""UDP conntrack cleanup: without it a UDP client keeps talking to a removed endpoint.

UDP has no connection end, so a conntrack entry that DNATs to an endpoint lives
as long as the client keeps sending. Upstream deletes, after a sync, the entries
pointing at endpoints that went away, and the entries of services that just got
their first endpoints (those were created while the traffic was rejected).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from netproxy import execs
from netproxy.model import ServicePort, ServicePortName, categorize
from netproxy.tracker import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UdpView:
    """The UDP service ports and the endpoint IPs they could reach at one sync."""

    ports: dict[ServicePortName, ServicePort]
    reachable: dict[ServicePortName, frozenset[str]]


def udp_view(snap: Snapshot) -> UdpView:
    udp = snap.udp_services
    ports = {p.name: p for key, plist in snap.service_ports.items() if key in udp for p in plist
             if p.protocol == "udp"}
    reachable = {n: frozenset(e.ip for e in categorize(snap.endpoints_of(n), p).all_reachable)
                 for n, p in ports.items()}
    return UdpView(ports, reachable)


def stale_commands(before: UdpView, after: UdpView, nat_match: str = "--dst-nat") -> list[list[str]]:
    """conntrack -D invocations for what changed between two syncs (deduplicated, ordered).

    `nat_match` is how an entry's endpoint is matched: `--dst-nat` (netfilter DNAT) or
    `--reply-src` (IPVS, which rewrites the reply tuple without NAT status bits)."""
    commands: list[list[str]] = []
    for name, svc in before.ports.items():
        gone = before.reachable.get(name, frozenset()) - after.reachable.get(name, frozenset())
        for ip in sorted(gone):
            for vip in (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips):
                commands.append(["-D", "-p", "udp", "--orig-dst", vip, nat_match, ip])
            if svc.node_port:
                commands.append(["-D", "-p", "udp", "--orig-port-dst", str(svc.node_port), nat_match, ip])
    for name, svc in after.ports.items():
        if after.reachable.get(name) and not before.reachable.get(name):
            for vip in (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips):
                commands.append(["-D", "-p", "udp", "--orig-dst", vip])
            if svc.node_port:
                commands.append(["-D", "-p", "udp", "--orig-port-dst", str(svc.node_port)])
    unique: list[list[str]] = []
    for c in commands:
        if c not in unique:
            unique.append(c)
    return unique


async def flush(commands: list[list[str]]) -> int:
    """Run the deletions; "0 flow entries" (exit 1) is not an error. Returns the number run."""
    if not commands:
        return 0
    if not execs.have("conntrack"):
        log.warning("conntrack is not installed; stale UDP flows are not removed")
        return 0
    for args in commands:
        result = await execs.run(["conntrack", *args], check=False)
        if result.code not in (0, 1):
            log.warning("conntrack %s: %s", " ".join(args), result.stderr.strip())
    return len(commands)
