"""IPVS mode, the pure part: what the kernel should hold for a snapshot, and how to get there.

`build` turns the shared model into the desired state: the /32 addresses of the
dummy device kube-ipvs0 (every ClusterIP, externalIP and LoadBalancer ingress
IP), one IPVS virtual server per (address, protocol, port) — NodePorts on every
chosen node address — with its real servers, and the inputs of the companion
nftables table. `diff` compares that with a dump of the kernel and yields the
smallest list of changes, touching only virtual servers this proxy owns.
`companion_script` renders `table ip kube-proxy-ipvs`, the netfilter half that
IPVS cannot do itself: masquerade (hairpin, ClusterIP from outside the cluster
CIDR or --masquerade-all, external traffic with policy Cluster), REJECT for
services without endpoints, and refusing ports nobody serves on kube-ipvs0
addresses. No kernel access here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from netproxy.model import ServicePort, categorize
from netproxy.tracker import Snapshot

DEVICE = "kube-ipvs0"
TABLE = "kube-proxy-ipvs"
MASQ_MARK = "0x00004000"
NODEPORT_RANGE = (30000, 32767)  # the API server's default --service-node-port-range
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos")
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOL_NUMBERS.items()}
PERSISTENT_FLAG = 0x0001  # IP_VS_SVC_F_PERSISTENT
MASQ_FORWARDING = 0  # IP_VS_CONN_F_MASQ: real servers are reached by DNAT


def _ip_order(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


@dataclass(frozen=True)
class VirtualServerKey:
    """What identifies a virtual server in the kernel."""

    ip: str
    protocol: str  # "tcp", "udp", "sctp"
    port: int

    def order(self) -> tuple[int, str, int]:
        return (_ip_order(self.ip), self.protocol, self.port)

    def __str__(self) -> str:
        return f"{self.protocol.upper()} {self.ip}:{self.port}"


@dataclass(frozen=True)
class RealServer:
    ip: str
    port: int
    weight: int = 1
    forwarding: int = MASQ_FORWARDING

    @property
    def ident(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def order(self) -> tuple[int, int]:
        return (_ip_order(self.ip), self.port)

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class VirtualServer:
    key: VirtualServerKey
    scheduler: str = "rr"
    persistence: int = 0  # ClientIP affinity timeout in seconds; 0: not persistent
    reals: tuple[RealServer, ...] = ()

    def settings(self) -> tuple[str, int]:
        return (self.scheduler, self.persistence)

    def real_map(self) -> dict[tuple[str, int], RealServer]:
        return {r.ident: r for r in self.reals}


@dataclass
class IpvsState:
    """Addresses on kube-ipvs0 and virtual servers (the kernel's, or the wanted ones)."""

    addresses: set[str] = field(default_factory=set)
    servers: dict[VirtualServerKey, VirtualServer] = field(default_factory=dict)


@dataclass(frozen=True)
class IpvsOptions:
    node_name: str
    cluster_cidr: str | None = None
    masquerade_all: bool = False
    scheduler: str = "rr"
    # addresses NodePort virtual servers are put on (the node's own, kube-ipvs0's and 127/8 excluded)
    node_ips: tuple[str, ...] = ()
    # None: NodePorts on every local address (--nodeport-addresses unset); else exactly these
    nodeport_ips: tuple[str, ...] | None = None


Tuple3 = tuple[str, str, int]  # ip, protocol, port
Tuple2 = tuple[str, int]  # protocol, port


@dataclass
class Companion:
    """The elements of the nftables companion table (its chains are fixed)."""

    service_ips: set[str] = field(default_factory=set)
    service_ports: set[Tuple3] = field(default_factory=set)
    cluster_ports: set[Tuple3] = field(default_factory=set)
    external_ports: set[Tuple3] = field(default_factory=set)
    external_local_ports: set[Tuple3] = field(default_factory=set)
    nodeports: set[Tuple2] = field(default_factory=set)
    nodeports_local: set[Tuple2] = field(default_factory=set)
    no_endpoint_services: dict[Tuple3, str] = field(default_factory=dict)
    no_endpoint_nodeports: dict[Tuple2, str] = field(default_factory=dict)
    hairpin: set[str] = field(default_factory=set)


@dataclass
class Desired:
    ipvs: IpvsState
    companion: Companion
    no_local_internal: int = 0
    no_local_external: int = 0


def build(snap: Snapshot, opts: IpvsOptions) -> Desired:
    """The wanted addresses, virtual servers and companion elements for `snap` (always every service)."""
    state, comp = IpvsState(), Companion()
    desired = Desired(state, comp)
    node_ips = [ip for ip in opts.node_ips if not ip.startswith("127.")]
    for name in sorted(snap.ports):
        svc = snap.ports[name]
        _service(desired, svc, snap.endpoints_of(name), opts, node_ips)
    # an externalIP that is already a node address needs no second home on kube-ipvs0
    state.addresses -= set(opts.node_ips)
    comp.service_ips = set(state.addresses)
    comp.service_ports = {(k.ip, k.protocol, k.port) for k in state.servers if k.ip in state.addresses}
    return desired


def _service(desired: Desired, svc: ServicePort, endpoints: tuple, opts: IpvsOptions,
             node_ips: list[str]) -> None:
    state, comp = desired.ipvs, desired.companion
    cat = categorize(endpoints, svc)
    proto = svc.protocol
    internal = cat.local if svc.internal_policy_local else cat.cluster
    external = cat.local if svc.external_policy_local else cat.cluster
    persistence = svc.sticky_seconds if svc.session_affinity else 0

    def add(ip: str, port: int, eps: Iterable) -> None:
        reals = tuple(sorted({RealServer(e.ip, e.port) for e in eps}, key=RealServer.order))
        key = VirtualServerKey(ip, proto, port)
        state.servers[key] = VirtualServer(key, opts.scheduler, persistence, reals)

    desired.no_local_internal += int(cat.has_any and not internal)
    desired.no_local_external += int(cat.has_any and svc.externally_accessible and not external)
    no_internal = "goto reject-chain" if not cat.has_any else "drop"

    state.addresses.add(svc.cluster_ip)
    add(svc.cluster_ip, svc.port, internal)
    comp.cluster_ports.add((svc.cluster_ip, proto, svc.port))
    if not internal:
        comp.no_endpoint_services[(svc.cluster_ip, proto, svc.port)] = no_internal
    for ip in (*svc.external_ips, *svc.load_balancer_ips):
        state.addresses.add(ip)
        add(ip, svc.port, external)
        (comp.external_local_ports if svc.external_policy_local else comp.external_ports).add((ip, proto, svc.port))
        if not external:
            comp.no_endpoint_services[(ip, proto, svc.port)] = no_internal
    if svc.node_port:
        for ip in node_ips:
            add(ip, svc.node_port, external)
        (comp.nodeports_local if svc.external_policy_local else comp.nodeports).add((proto, svc.node_port))
        if not external:
            comp.no_endpoint_nodeports[(proto, svc.node_port)] = no_internal
    for ep in (*internal, *external):
        comp.hairpin.add(ep.ip)


# -- the difference to the kernel -------------------------------------------------------------


@dataclass
class Plan:
    """Changes taking the kernel to the desired state, in the order they are applied."""

    add_addresses: list[str] = field(default_factory=list)
    add_servers: list[VirtualServer] = field(default_factory=list)
    update_servers: list[VirtualServer] = field(default_factory=list)
    add_reals: list[tuple[VirtualServerKey, RealServer]] = field(default_factory=list)
    update_reals: list[tuple[VirtualServerKey, RealServer]] = field(default_factory=list)
    del_reals: list[tuple[VirtualServerKey, RealServer]] = field(default_factory=list)
    del_servers: list[VirtualServerKey] = field(default_factory=list)
    del_addresses: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.add_addresses, self.add_servers, self.update_servers, self.add_reals,
                    self.update_reals, self.del_reals, self.del_servers, self.del_addresses))

    def lines(self) -> list[str]:
        """The plan as ipvsadm/ip-like lines, for logs and tests."""
        out = [f"addr add {a}/32 dev {DEVICE}" for a in self.add_addresses]
        out += [f"add {s.key} {_settings(s)}" for s in self.add_servers]
        out += [f"edit {s.key} {_settings(s)}" for s in self.update_servers]
        out += [f"add {k} -> {r} weight {r.weight}" for k, r in self.add_reals]
        out += [f"edit {k} -> {r} weight {r.weight}" for k, r in self.update_reals]
        out += [f"del {k} -> {r}" for k, r in self.del_reals]
        out += [f"del {k}" for k in self.del_servers]
        out += [f"addr del {a}/32 dev {DEVICE}" for a in self.del_addresses]
        return out


def _settings(server: VirtualServer) -> str:
    text = f"scheduler {server.scheduler}"
    return text + (f" persistent {server.persistence}" if server.persistence else "")


def owned(key: VirtualServerKey, device_addresses: set[str], node_ips: Iterable[str],
          programmed: set[VirtualServerKey] | None = None) -> bool:
    """Whether a virtual server is this proxy's to change or remove: on a kube-ipvs0 address, a
    NodePort (node address, port in the NodePort range), or created by this process."""
    if key.ip in device_addresses or (programmed is not None and key in programmed):
        return True
    return key.ip in set(node_ips) and NODEPORT_RANGE[0] <= key.port <= NODEPORT_RANGE[1]


def diff(current: IpvsState, desired: IpvsState, node_ips: Iterable[str],
         programmed: set[VirtualServerKey] | None = None) -> Plan:
    """What to change so that the kernel (`current`: kube-ipvs0's addresses, every virtual server
    with its real servers) holds `desired`; virtual servers that are not ours are left alone."""
    plan = Plan()
    plan.add_addresses = sorted(desired.addresses - current.addresses, key=_ip_order)
    plan.del_addresses = sorted(current.addresses - desired.addresses, key=_ip_order)
    ours = current.addresses | desired.addresses
    nodes = set(node_ips)
    for key in sorted(desired.servers, key=VirtualServerKey.order):
        want = desired.servers[key]
        have = current.servers.get(key)
        if have is None:
            plan.add_servers.append(want)
            plan.add_reals += [(key, r) for r in want.reals]
            continue
        if have.settings() != want.settings():
            plan.update_servers.append(want)
        have_reals = have.real_map()
        want_reals = want.real_map()
        for ident, real in want_reals.items():
            old = have_reals.get(ident)
            if old is None:
                plan.add_reals.append((key, real))
            elif old != real:
                plan.update_reals.append((key, real))
        plan.del_reals += [(key, r) for ident, r in sorted(have_reals.items(), key=lambda i: i[1].order())
                           if ident not in want_reals]
    plan.del_servers = sorted((k for k in current.servers
                               if k not in desired.servers and owned(k, ours, nodes, programmed)),
                              key=VirtualServerKey.order)
    return plan


# -- the nftables companion table ---------------------------------------------------------------


def sorted_keys3(items: Iterable[Tuple3]) -> list[Tuple3]:
    return sorted(items, key=lambda t: (_ip_order(t[0]), t[1], t[2]))


def _t3(items: Iterable[Tuple3]) -> list[str]:
    return [f"{ip} . {proto} . {port}" for ip, proto, port in sorted_keys3(items)]


def _t2(items: Iterable[Tuple2]) -> list[str]:
    return [f"{proto} . {port}" for proto, port in sorted(items)]


def companion_script(comp: Companion, opts: IpvsOptions) -> str:
    """`nft -f` input replacing `table ip kube-proxy-ipvs` in one transaction."""
    addr3 = "type ipv4_addr . inet_proto . inet_service"
    proto2 = "type inet_proto . inet_service"
    nodeport_match = ("fib daddr type local ip daddr != 127.0.0.0/8 " if opts.nodeport_ips is None
                      else "ip daddr @nodeport-ips ")
    sets: list[tuple[str, str, str, str, list[str]]] = [
        ("set", "service-ips", "type ipv4_addr", f"addresses on {DEVICE}",
         [ip for ip in sorted(comp.service_ips, key=_ip_order)]),
        ("set", "service-ports", addr3, "virtual servers on those addresses", _t3(comp.service_ports)),
        ("set", "cluster-ports", addr3, "ClusterIP virtual servers", _t3(comp.cluster_ports)),
        ("set", "external-ports", addr3, "external IP virtual servers, external traffic policy Cluster",
         _t3(comp.external_ports)),
        ("set", "external-local-ports", addr3, "external IP virtual servers, external traffic policy Local",
         _t3(comp.external_local_ports)),
        ("set", "nodeports", proto2, "NodePorts, external traffic policy Cluster", _t2(comp.nodeports)),
        ("set", "nodeports-local", proto2, "NodePorts, external traffic policy Local", _t2(comp.nodeports_local)),
        ("map", "no-endpoint-services", f"{addr3} : verdict", "services without usable endpoints",
         [f"{ip} . {proto} . {port} : {comp.no_endpoint_services[(ip, proto, port)]}"
          for ip, proto, port in sorted_keys3(comp.no_endpoint_services)]),
        ("map", "no-endpoint-nodeports", f"{proto2} : verdict", "NodePorts without usable endpoints",
         [f"{proto} . {port} : {comp.no_endpoint_nodeports[(proto, port)]}"
          for proto, port in sorted(comp.no_endpoint_nodeports)]),
        ("set", "hairpin", "type ipv4_addr . ipv4_addr", "endpoints reaching themselves",
         [f"{ip} . {ip}" for ip in sorted(comp.hairpin, key=_ip_order)]),
    ]
    if opts.nodeport_ips is not None:
        sets.append(("set", "nodeport-ips", "type ipv4_addr", "addresses that accept NodePorts",
                     [ip for ip in sorted(set(opts.nodeport_ips), key=_ip_order) if not ip.startswith("127.")]))
    cluster_masq = []
    if opts.masquerade_all:
        cluster_masq = ["ip daddr . meta l4proto . th dport @cluster-ports jump mark-for-masquerade"]
    elif opts.cluster_cidr:
        cluster_masq = [f"ip daddr . meta l4proto . th dport @cluster-ports ip saddr != {opts.cluster_cidr} "
                        "jump mark-for-masquerade"]
    chains: list[tuple[str, str | None, list[str]]] = [
        ("filter-input", "type filter hook input priority -110; policy accept;",
         ["ct state new jump service-check"]),
        ("filter-output", "type filter hook output priority -110; policy accept;",
         ["ct state new jump service-check"]),
        ("service-check", None,
         ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
          f"{nodeport_match}meta l4proto . th dport vmap @no-endpoint-nodeports",
          "ip daddr . meta l4proto . th dport @service-ports accept",
          "ip daddr @service-ips reject"]),
        ("reject-chain", None, ["reject"]),
        ("nat-prerouting", "type nat hook prerouting priority -100; policy accept;", ["jump mark-services"]),
        ("nat-output", "type nat hook output priority -100; policy accept;", ["jump mark-services"]),
        ("nat-postrouting", "type nat hook postrouting priority 100; policy accept;", ["jump masquerading"]),
        ("mark-for-masquerade", None, [f"meta mark set meta mark | {MASQ_MARK}"]),
        ("mark-services", None,
         [*cluster_masq,
          "ip daddr . meta l4proto . th dport @external-ports jump mark-for-masquerade",
          "ip daddr . meta l4proto . th dport @external-local-ports fib saddr type local "
          "jump mark-for-masquerade",
          f"{nodeport_match}meta l4proto . th dport @nodeports jump mark-for-masquerade",
          f"{nodeport_match}meta l4proto . th dport @nodeports-local fib saddr type local "
          "jump mark-for-masquerade"]),
        ("masquerading", None,
         ["ip saddr . ip daddr @hairpin jump mark-for-masquerade",
          f"meta mark & {MASQ_MARK} == 0 return", f"meta mark set meta mark ^ {MASQ_MARK}",
          "masquerade fully-random"]),
    ]
    lines = [f"add table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
             '\tcomment "rules for kube-proxy in ipvs mode"']
    for kind, name, type_line, comment, _ in sets:
        lines += [f"\t{kind} {name} {{", f"\t\t{type_line}", f'\t\tcomment "{comment}"', "\t}"]
    for name, hook, rules in chains:
        lines += [f"\tchain {name} {{", *([f"\t\t{hook}"] if hook else []), *(f"\t\t{r}" for r in rules), "\t}"]
    lines.append("}")
    for _, name, _, _, elements in sets:
        if elements:
            lines.append(f"add element ip {TABLE} {name} {{ {', '.join(elements)} }}")
    return "\n".join(lines) + "\n"


def element_count(comp: Companion) -> int:
    return (len(comp.service_ips) + len(comp.service_ports) + len(comp.cluster_ports) + len(comp.external_ports)
            + len(comp.external_local_ports) + len(comp.nodeports) + len(comp.nodeports_local)
            + len(comp.no_endpoint_services) + len(comp.no_endpoint_nodeports) + len(comp.hairpin))
