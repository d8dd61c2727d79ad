"""The node's own IPv4 addresses, for --nodeport-addresses (read in the proxy's namespace)."""

from __future__ import annotations

import ipaddress


def local_ipv4_addresses() -> list[str]:
    from pyroute2 import IPRoute  # ~10 MB of modules, needed only with --nodeport-addresses

    with IPRoute() as ipr:
        return sorted({a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2) if a.get_attr("IFA_ADDRESS")},
                      key=lambda ip: ipaddress.IPv4Address(ip))


def nodeport_ips(cidrs: list[str]) -> tuple[str, ...] | None:
    """None when NodePorts answer on every local address (no CIDRs, or 0.0.0.0/0); else the matching IPs."""
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs if c.strip()]
    nets = [n for n in nets if n.version == 4]
    if not nets or any(n.prefixlen == 0 for n in nets):
        return None
    return tuple(ip for ip in local_ipv4_addresses() if any(ipaddress.IPv4Address(ip) in n for n in nets))
