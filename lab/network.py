"""The lab's wire: one bridge, one network namespace per simulated node.

The bridge lives in the host namespace so that the host's `kubectl` reaches
the API server on the bridge address, but nothing routes from the lab to the
outside: the host does not forward (the lab never touches `ip_forward` there),
and node namespaces have no default route. Each node gets an `unreachable`
route for the cluster's pod CIDR (DESIGN.md §5; the agents' per-node routes are
more specific), and the service CIDR as a `local` route on `lo`: a node's own
connection to a ClusterIP must get past routing to reach the proxy's OUTPUT
DNAT (an `unreachable` route fails it before netfilter sees it), and a service
address that no rule claims is then delivered locally and refused at once.

Interfaces are created under names derived from the lab's name, checked to be
ours before anything is reused or deleted, and the node side of each veth is
created directly inside the node's namespace (`peer ... netns`), so no host
interface is ever renamed, moved or reconfigured.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import random
import socket
import subprocess
from dataclasses import dataclass

from pyroute2 import IPRoute, NetlinkError, NetNS, netns

NETNS_DIR = "/var/run/netns"
# Written as the bridge's ifalias: proof that an existing bridge is the lab's own.
BRIDGE_ALIAS_PREFIX = "pyk8s-lab:"


@dataclass(frozen=True)
class LabNetwork:
    """Addresses and names of one lab; everything derives from `name` and `subnet`."""

    name: str = "lab"
    subnet: str = "10.99.0.0/24"
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"

    def __post_init__(self) -> None:
        if not self.name.isalnum() or len(self.name) > 6:
            raise ValueError(f"lab name {self.name!r} must be 1-6 alphanumeric characters")
        if ipaddress.ip_network(self.subnet).prefixlen > 24:
            raise ValueError(f"lab subnet {self.subnet} must be /24 or larger")

    @property
    def bridge(self) -> str:
        return f"pyk8s-{self.name}"

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def gateway(self) -> str:
        """The host's address on the bridge: the API server and the registry listen here."""
        return str(ipaddress.ip_network(self.subnet).network_address + 1)

    def node_ip(self, index: int) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 10 + index)

    def node_netns(self, node: str) -> str:
        return f"pyk8s-{self.name}-{node}"

    def host_veth(self, index: int) -> str:
        return f"pk{self.name}v{index}"

    def netns_path(self, node: str) -> str:
        return os.path.join(NETNS_DIR, self.node_netns(node))


def _link_index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def _link_alias(ipr: IPRoute, index: int) -> str:
    link = ipr.get_links(index)[0]
    return str(link.get_attr("IFLA_IFALIAS") or "")


def _overlapping_routes(ipr: IPRoute, subnet: str, except_index: int | None = None) -> list[str]:
    """Routes of the host's main table (not the default route) that overlap `subnet`, as `dst dev`."""
    wanted = ipaddress.ip_network(subnet)
    found = []
    for route in ipr.get_routes(family=socket.AF_INET, table=254):
        dst, oif = route.get_attr("RTA_DST"), route.get_attr("RTA_OIF")
        if dst is None or not route["dst_len"] or oif == except_index:
            continue
        if ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False).overlaps(wanted):
            names = ipr.get_links(oif) if oif is not None else []
            found.append(f"{dst}/{route['dst_len']} dev {names[0].get_attr('IFLA_IFNAME') if names else '?'}")
    return found


def free_subnet(first_octets: str, attempts: int = 64) -> str:
    """A random `<first_octets>.N.0/24` that no route of the host overlaps (test labs, side by side).

    Blocking netlink I/O, like every function here: from a coroutine, call it through `asyncio.to_thread`
    (pyroute2's synchronous socket refuses to run inside a running event loop).
    """
    with IPRoute() as ipr:
        for _ in range(attempts):
            subnet = f"{first_octets}.{random.randint(1, 250)}.0/24"
            if not _overlapping_routes(ipr, subnet):
                return subnet
    raise RuntimeError(f"no free /24 under {first_octets}. after {attempts} tries")


def check_subnet(net: LabNetwork) -> None:
    """Raise if the host routes part of the lab's subnet elsewhere than this lab's own bridge."""
    with IPRoute() as ipr:
        index = _link_index(ipr, net.bridge)
        clashes = _overlapping_routes(ipr, net.subnet, except_index=index)
    if clashes:
        raise RuntimeError(f"lab subnet {net.subnet} overlaps the host's route {clashes[0]}; "
                           "choose another --subnet (or stop the lab that uses it)")


def lab_exists(net: LabNetwork) -> bool:
    """True if this host has the lab's bridge or any of its node namespaces (running or left over)."""
    with IPRoute() as ipr:
        if _link_index(ipr, net.bridge) is not None:
            return True
    return bool(lab_namespaces(net))


def create_bridge(net: LabNetwork) -> None:
    """Create the lab bridge with the gateway address, or adopt it if it is already ours.

    Refused when the host already routes part of the lab's subnet elsewhere (another lab's bridge, a
    real network): the nodes' traffic would go there instead.
    """
    with IPRoute() as ipr:
        index = _link_index(ipr, net.bridge)
        clashes = _overlapping_routes(ipr, net.subnet, except_index=index)
        if clashes:
            raise RuntimeError(f"lab subnet {net.subnet} overlaps the host's route {clashes[0]}; "
                               "choose another subnet (or remove the other lab)")
        if index is not None:
            if _link_alias(ipr, index) != BRIDGE_ALIAS_PREFIX + net.name:
                raise RuntimeError(f"interface {net.bridge} exists and is not this lab's bridge; refusing to touch it")
        else:
            ipr.link("add", ifname=net.bridge, kind="bridge")
            index = _link_index(ipr, net.bridge)
            assert index is not None
            ipr.link("set", index=index, ifalias=BRIDGE_ALIAS_PREFIX + net.name)
        with contextlib.suppress(NetlinkError):  # EEXIST on adoption
            ipr.addr("add", index=index, address=net.gateway, prefixlen=net.prefixlen)
        ipr.link("set", index=index, state="up")


def remove_bridge(net: LabNetwork) -> None:
    with IPRoute() as ipr:
        index = _link_index(ipr, net.bridge)
        if index is None:
            return
        if _link_alias(ipr, index) != BRIDGE_ALIAS_PREFIX + net.name:
            raise RuntimeError(f"interface {net.bridge} is not this lab's bridge; not removing it")
        ipr.link("del", index=index)


def _ns_sysctl(net: LabNetwork, node: str, key: str, value: str) -> None:
    """Write a per-namespace sysctl from inside the node's namespace."""
    subprocess.run(["nsenter", f"--net={net.netns_path(node)}", "sysctl", "-q", "-w", f"{key}={value}"],
                   check=True, capture_output=True)


def add_node(net: LabNetwork, node: str, index: int) -> str:
    """Create the node's namespace wired to the bridge; return the node's IP."""
    ns_name = net.node_netns(node)
    if ns_name not in netns.listnetns():
        netns.create(ns_name)
    host_side = net.host_veth(index)
    node_ip = net.node_ip(index)
    with IPRoute() as ipr:
        bridge_index = _link_index(ipr, net.bridge)
        if bridge_index is None:
            raise RuntimeError(f"lab bridge {net.bridge} does not exist")
        if _link_index(ipr, host_side) is None:
            # The peer is born inside the namespace under its final name: nothing in the
            # host namespace is ever called eth0 or moved.
            ipr.link("add", ifname=host_side, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns_name})
        host_index = _link_index(ipr, host_side)
        assert host_index is not None
        ipr.link("set", index=host_index, master=bridge_index, state="up")
    with NetNS(ns_name) as ns:
        lo = ns.link_lookup(ifname="lo")[0]
        ns.link("set", index=lo, state="up")
        eth0 = ns.link_lookup(ifname="eth0")[0]
        with contextlib.suppress(NetlinkError):
            ns.addr("add", index=eth0, address=node_ip, prefixlen=net.prefixlen)
        ns.link("set", index=eth0, state="up")
        lo_index = ns.link_lookup(ifname="lo")[0]
        for cidr, kind in ((net.cluster_cidr, "unreachable"), (net.service_cidr, "local")):
            try:
                if kind == "local":
                    ns.route("add", dst=cidr, type="local", oif=lo_index, table=255, scope=254, proto=4)
                else:
                    ns.route("add", dst=cidr, type=kind)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
    _ns_sysctl(net, node, "net.ipv4.ip_forward", "1")
    return node_ip


def remove_node(net: LabNetwork, node: str, index: int) -> None:
    """Delete the node's namespace (its eth0 goes with it, and so does the host side)."""
    with IPRoute() as ipr:
        host_index = _link_index(ipr, net.host_veth(index))
        if host_index is not None:
            ipr.link("del", index=host_index)
    ns_name = net.node_netns(node)
    if ns_name in netns.listnetns():
        netns.remove(ns_name)


def lab_namespaces(net: LabNetwork) -> list[str]:
    """Every namespace of this lab that exists now (also leftovers of a crashed run)."""
    prefix = f"pyk8s-{net.name}-"
    return sorted(n for n in netns.listnetns() if n.startswith(prefix))


def lab_host_veths(net: LabNetwork) -> list[str]:
    prefix = f"pk{net.name}v"
    with IPRoute() as ipr:
        names = [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]
    return sorted(n for n in names if n.startswith(prefix) and n[len(prefix):].isdigit())


def teardown(net: LabNetwork) -> None:
    """Remove every namespace, veth and the bridge this lab made; idempotent."""
    for ns_name in lab_namespaces(net):
        netns.remove(ns_name)
    with IPRoute() as ipr:
        for name in lab_host_veths(net):
            index = _link_index(ipr, name)
            if index is not None:
                with contextlib.suppress(NetlinkError):
                    ipr.link("del", index=index)
    remove_bridge(net)
