"""The nftables table of one sync (`table ip kube-proxy`), and the transaction that installs it.

The first sync of a process replaces the whole table in one `nft -f`
transaction (`full_script`); later syncs send only the difference to what the
previous sync installed (`diff_script`: changed chains, added/removed
elements), still as one transaction.

The packet path stays O(1) as upstream's: `ip daddr . meta l4proto . th dport
vmap @service-ips` picks a per-service chain. Upstream's per-service chain then
ends in an anonymous `numgen random mod N vmap {...}` to per-endpoint chains;
on nft 1.0.6 those anonymous sets cost 56 of 60 s at 10k services (DESIGN §6).
Here there are no per-service sets at all: every service gets a slice of one
number space, and its chain does
    meta l4proto tcp dnat ip to numgen random mod N offset K map @endpoint-dnat-tcp-NN
where a named map (one per protocol and shard NN, see DISPATCH_SHARDS) holds
`K+i : ip . port` for its services' endpoints, loaded as one batch of elements. Hairpin traffic (an endpoint
reaching itself through its service) is masqueraded by one set of
`ip saddr . ip daddr` pairs instead of a rule per endpoint. Only services with
ClientIP affinity get upstream-style endpoint chains (they must record the
client in a per-endpoint timeout set), reached through the named verdict map
@endpoint-chains in the same way.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from netproxy import names
from netproxy.model import Endpoint, ServicePort, ServicePortName, categorize
from netproxy.tracker import Snapshot

TABLE = "kube-proxy"
MASQ_MARK = "0x00004000"
# The kernel checks every element added to a data map against every rule bound to
# that map, so one map for all services costs services x endpoints per load (minutes
# at 10k services). Spreading the services over a fixed number of maps divides that.
DISPATCH_SHARDS = 64


@dataclass(frozen=True)
class NftOptions:
    node_name: str
    cluster_cidr: str | None = None
    masquerade_all: bool = False
    nodeport_ips: tuple[str, ...] | None = None  # None: every local address


@dataclass
class NamedSet:
    """A set or map: its declaration lines and its elements by key (the text after the key is the value)."""

    kind: str  # "set" or "map"
    decl: tuple[str, ...]
    elements: dict[str, str] = field(default_factory=dict)
    keep_elements: bool = False  # affinity sets: the kernel fills them, a sync must not flush them


@dataclass
class NftState:
    """The whole desired table: chains (hook line or None, rules) and sets/maps."""

    chains: dict[str, tuple[str | None, list[str]]] = field(default_factory=dict)
    sets: dict[str, NamedSet] = field(default_factory=dict)
    no_local_internal: int = 0
    no_local_external: int = 0

    @property
    def rule_count(self) -> int:
        return sum(len(rules) for _, rules in self.chains.values())

    @property
    def element_count(self) -> int:
        return sum(len(s.elements) for s in self.sets.values())


class SlotAllocator:
    """Stable slices of the numgen number space, one per dispatching chain, so that an
    endpoint change of one service leaves every other service's chain and elements alone."""

    def __init__(self) -> None:
        self.slots: dict[str, tuple[int, int]] = {}
        self.free: list[tuple[int, int]] = []
        self.next = 0

    def get(self, chain: str, size: int) -> int:
        current = self.slots.get(chain)
        if current is not None and current[1] == size:
            return current[0]
        if current is not None:
            self.free.append(current)
        for i, (offset, free_size) in enumerate(self.free):
            if free_size >= size:
                self.free[i] = (offset + size, free_size - size)
                self.slots[chain] = (offset, size)
                return offset
        offset = self.next
        self.next += size
        self.slots[chain] = (offset, size)
        return offset

    def release_except(self, alive: set[str]) -> None:
        for chain in [c for c in self.slots if c not in alive]:
            self.free.append(self.slots.pop(chain))
        self.free = [f for f in self.free if f[1] > 0]


@dataclass
class Contribution:
    """What one service port adds to the table; replayed as is while the service does not change."""

    chains: list[tuple[str, list[str]]] = field(default_factory=list)
    elements: list[tuple[str, str, str]] = field(default_factory=list)
    sets: list[tuple[str, str, tuple[str, ...], bool]] = field(default_factory=list)
    no_local: tuple[int, int] = (0, 0)


class BuildCache:
    """Contributions of the previous build, so a partial sync only recomputes changed services."""

    def __init__(self) -> None:
        self.contributions: dict[ServicePortName, Contribution] = {}


@dataclass
class _Collect:
    state: NftState
    dnat_slots: SlotAllocator
    chain_slots: SlotAllocator
    current: Contribution | None = None

    def element(self, set_name: str, key: str, value: str = "") -> None:
        self.state.sets[set_name].elements[key] = value
        if self.current is not None:
            self.current.elements.append((set_name, key, value))

    def chain(self, name: str, rules: list[str]) -> None:
        self.state.chains[name] = (None, rules)
        if self.current is not None:
            self.current.chains.append((name, rules))

    def add_set(self, name: str, kind: str, decl: tuple[str, ...], keep_elements: bool = False) -> None:
        if name not in self.state.sets:
            self.state.sets[name] = NamedSet(kind, decl, {}, keep_elements)
        if self.current is not None:
            self.current.sets.append((name, kind, decl, keep_elements))

    def replay(self, contribution: Contribution) -> None:
        for name, kind, decl, keep in contribution.sets:
            if name not in self.state.sets:
                self.state.sets[name] = NamedSet(kind, decl, {}, keep)
        for name, rules in contribution.chains:
            self.state.chains[name] = (None, rules)
        sets = self.state.sets
        for set_name, key, value in contribution.elements:
            sets[set_name].elements[key] = value


def _map(kind: str, type_line: str, comment: str) -> NamedSet:
    return NamedSet(kind, (type_line, f'comment "{comment}"'))


def build(snap: Snapshot, opts: NftOptions, dnat_slots: SlotAllocator | None = None,
          chain_slots: SlotAllocator | None = None, cache: BuildCache | None = None) -> NftState:
    """The desired table for `snap`. Pass the backend's allocators to keep slots stable between syncs,
    and its cache to reuse what unchanged services contributed last time (partial syncs)."""
    state = NftState()
    addr_verdict = "type ipv4_addr . inet_proto . inet_service : verdict"
    port_verdict = "type inet_proto . inet_service : verdict"
    state.sets = {
        "cluster-ips": _map("set", "type ipv4_addr", "Active ClusterIPs"),
        "service-ips": _map("map", addr_verdict, "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
        "service-nodeports": _map("map", port_verdict, "NodePort traffic"),
        "no-endpoint-services": _map("map", addr_verdict,
                                     "vmap to drop or reject packets to services with no endpoints"),
        "no-endpoint-nodeports": _map("map", port_verdict,
                                      "vmap to drop or reject packets to service nodeports with no endpoints"),
        "hairpin": _map("set", "type ipv4_addr . ipv4_addr", "endpoints reaching themselves"),
    }
    if opts.nodeport_ips is not None:
        state.sets["nodeport-ips"] = _map("set", "type ipv4_addr", "IPs that accept NodePort traffic")
        for ip in opts.nodeport_ips:
            if not ip.startswith("127."):
                state.sets["nodeport-ips"].elements[ip] = ""
    if opts.nodeport_ips is None:
        nodeport_match = "fib daddr type local ip daddr != 127.0.0.0/8 "
    else:
        nodeport_match = "ip daddr @nodeport-ips "
    hooks = [
        ("filter-input", "type filter hook input priority -110; policy accept;",
         ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"]),
        ("filter-forward", "type filter hook forward priority -110; policy accept;",
         ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ("filter-output", "type filter hook output priority -110; policy accept;",
         ["ct state new jump service-endpoints-check"]),
        ("filter-output-post-dnat", "type filter hook output priority -90; policy accept;",
         ["ct state new jump cluster-ips-check"]),
        ("nat-prerouting", "type nat hook prerouting priority -100; policy accept;", ["jump services"]),
        ("nat-output", "type nat hook output priority -100; policy accept;", ["jump services"]),
        ("nat-postrouting", "type nat hook postrouting priority 100; policy accept;", ["jump masquerading"]),
    ]
    for name, hook, rules in hooks:
        state.chains[name] = (hook, rules)
    fixed = {
        "mark-for-masquerade": [f"meta mark set meta mark | {MASQ_MARK}"],
        "masquerading": ["ip saddr . ip daddr @hairpin jump mark-for-masquerade",
                         f"meta mark & {MASQ_MARK} == 0 return", f"meta mark set meta mark ^ {MASQ_MARK}",
                         "masquerade fully-random"],
        "services": ["ip daddr . meta l4proto . th dport vmap @service-ips",
                     f"{nodeport_match}meta l4proto . th dport vmap @service-nodeports"],
        "service-endpoints-check": ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
        "nodeport-endpoints-check": [f"{nodeport_match}meta l4proto . th dport vmap @no-endpoint-nodeports"],
        "reject-chain": ["reject"],
        "cluster-ips-check": ["ip daddr @cluster-ips reject"],
    }
    for name, rules in fixed.items():
        state.chains[name] = (None, rules)
    c = _Collect(state, dnat_slots or SlotAllocator(), chain_slots or SlotAllocator())
    previous = cache.contributions if cache is not None else {}
    contributions: dict[ServicePortName, Contribution] = {}
    for spn in sorted(snap.ports):
        contribution = previous.get(spn)
        if contribution is not None and snap.changed is not None and spn.service not in snap.changed:
            c.replay(contribution)
        else:
            contribution = c.current = Contribution()
            contribution.no_local = _service(c, spn, snap.ports[spn], snap.endpoints_of(spn), opts)
            c.current = None
        contributions[spn] = contribution
        state.no_local_internal += contribution.no_local[0]
        state.no_local_external += contribution.no_local[1]
    if cache is not None:
        cache.contributions = contributions
    alive = set(state.chains)
    c.dnat_slots.release_except(alive)
    c.chain_slots.release_except(alive)
    return state


def _element_text(key: str, value: str) -> str:
    return f"{key} : {value}" if value else key


def full_script(state: NftState) -> str:
    """Replace the whole table in one transaction (first sync of a process, or after a failure).

    Elements come last, in one `add element` per set: nft 1.0.6 re-checks a set's
    elements for every rule that references it, so elements declared before the
    rules make the load quadratic (3.6 s instead of 1.6 s at 2k services).
    """
    lines = [f"add table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
             '\tcomment "rules for kube-proxy"']
    for name, s in state.sets.items():
        lines += [f"\t{s.kind} {name} {{", *(f"\t\t{d}" for d in s.decl), "\t}"]
    for name, (hook, rules) in state.chains.items():
        lines += [f"\tchain {name} {{", *([f"\t\t{hook}"] if hook else []), *(f"\t\t{r}" for r in rules),
                  "\t}"]
    lines.append("}")
    for name, s in state.sets.items():
        if s.elements:
            lines.append(f"add element ip {TABLE} {name} {{ "
                         + ", ".join(_element_text(k, v) for k, v in s.elements.items()) + " }")
    return "\n".join(lines) + "\n"


def diff_script(old: NftState, new: NftState) -> str:
    """The smallest transaction taking the kernel from `old` to `new` ("" when nothing changed)."""
    t = f"ip {TABLE}"
    out: list[str] = []
    changed = [n for n, c in new.chains.items() if old.chains.get(n) != c]
    stale_chains = [n for n in old.chains if n not in new.chains]
    stale_sets = [n for n in old.sets if n not in new.sets]
    for name in changed:
        hook, _ = new.chains[name]
        if name in old.chains:
            out.append(f"flush chain {t} {name}")
        else:
            out.append(f"add chain {t} {name}" + (f" {{ {hook} }}" if hook else ""))
    for name in stale_chains:
        out.append(f"flush chain {t} {name}")
    for name, s in new.sets.items():
        if name not in old.sets:
            out.append(f"add {s.kind} {t} {name} {{ {'; '.join(s.decl)}; }}")
    unchanged = {n for n, s in new.sets.items() if n in old.sets and old.sets[n].elements == s.elements}
    for name, s in new.sets.items():
        if name in unchanged:
            continue
        before = old.sets[name].elements if name in old.sets else {}
        gone = [k for k, v in before.items() if s.elements.get(k) != v]
        if gone:
            out.append(f"delete element {t} {name} {{ {', '.join(gone)} }}")
    for name in changed:
        out += [f"add rule {t} {name} {rule}" for rule in new.chains[name][1]]
    for name, s in new.sets.items():
        if name in unchanged:
            continue
        before = old.sets[name].elements if name in old.sets else {}
        added = [_element_text(k, v) for k, v in s.elements.items() if before.get(k) != v]
        if added:
            out.append(f"add element {t} {name} {{ {', '.join(added)} }}")
    for name in stale_chains:
        out.append(f"delete chain {t} {name}")
    for name in stale_sets:
        out.append(f"delete {old.sets[name].kind} {t} {name}")
    return "\n".join(out) + "\n" if out else ""


def shard(chain: str) -> int:
    """Which of the DISPATCH_SHARDS maps serves `chain` (stable across processes, unlike hash())."""
    return zlib.crc32(chain.encode()) % DISPATCH_SHARDS


def _dispatch_map(c: _Collect, name: str, type_line: str, comment: str) -> str:
    c.add_set(name, "map", (type_line, f'comment "{comment}"'))
    return name


def _dispatch(c: _Collect, chain: str, name: ServicePortName, svc: ServicePort,
              endpoints: tuple[Endpoint, ...]) -> list[str]:
    """Rules of `chain` choosing one of `endpoints` uniformly (and stickily with ClientIP affinity)."""
    n = len(endpoints)
    if not svc.session_affinity:
        dnat = _dispatch_map(c, f"endpoint-dnat-{svc.protocol}-{shard(chain):02d}",
                             f"typeof numgen random mod 1 : ip daddr . {svc.protocol} dport",
                             f"{svc.protocol} endpoint of each dispatch slot")
        offset = c.dnat_slots.get(chain, n)
        for i, ep in enumerate(endpoints):
            c.element(dnat, str(offset + i), f"{ep.ip} . {ep.port}")
        return [f"meta l4proto {svc.protocol} dnat ip to numgen random mod {n} offset {offset} map @{dnat}"]
    rules = []
    for ep in endpoints:
        base = names.nft_endpoint_base(name, ep)
        rules.append(f"ip saddr @affinity-{base} goto endpoint-{base}")
    vmap = _dispatch_map(c, f"endpoint-chains-{shard(chain):02d}", "typeof numgen random mod 1 : verdict",
                         "endpoint chains of services with session affinity")
    offset = c.chain_slots.get(chain, n)
    for i, ep in enumerate(endpoints):
        c.element(vmap, str(offset + i), f"goto endpoint-{names.nft_endpoint_base(name, ep)}")
    rules.append(f"numgen random mod {n} offset {offset} vmap @{vmap}")
    return rules


def _service(c: _Collect, name: ServicePortName, svc: ServicePort, all_endpoints: tuple[Endpoint, ...],
             opts: NftOptions) -> tuple[int, int]:
    proto, port = svc.protocol, svc.port
    cat = categorize(all_endpoints, svc)
    base = names.nft_service_base(name)
    svc_chain, local_chain, ext_chain = f"service-{base}", f"local-{base}", f"external-{base}"
    internal_chain, has_internal = svc_chain, cat.has_any
    if svc.internal_policy_local:
        internal_chain, has_internal = local_chain, cat.has_any and bool(cat.local)
    external_policy_chain, has_external = svc_chain, cat.has_any
    if svc.external_policy_local:
        external_policy_chain, has_external = local_chain, cat.has_any and bool(cat.local)
    no_local_int = int(cat.has_any and not has_internal)
    no_local_ext = int(cat.has_any and not has_external)
    verdict = "goto reject-chain" if not cat.has_any else "drop"

    c.element("cluster-ips", svc.cluster_ip)
    if has_internal:
        c.element("service-ips", f"{svc.cluster_ip} . {proto} . {port}", f"goto {internal_chain}")
    else:
        c.element("no-endpoint-services", f"{svc.cluster_ip} . {proto} . {port}", verdict)
    for ip in (*svc.external_ips, *svc.load_balancer_ips):
        if cat.has_any:
            c.element("service-ips", f"{ip} . {proto} . {port}", f"goto {ext_chain}")
        if not has_external:
            c.element("no-endpoint-services", f"{ip} . {proto} . {port}", verdict)
    if svc.node_port:
        if cat.has_any:
            c.element("service-nodeports", f"{proto} . {svc.node_port}", f"goto {ext_chain}")
        if not has_external:
            c.element("no-endpoint-nodeports", f"{proto} . {svc.node_port}", verdict)

    if cat.has_any and svc.externally_accessible:
        rules = []
        if not svc.external_policy_local:
            rules += ["jump mark-for-masquerade", f"goto {svc_chain}"]
        else:
            if opts.cluster_cidr:
                rules.append(f"ip saddr {opts.cluster_cidr} goto {svc_chain}")
            rules += ["fib saddr type local jump mark-for-masquerade", f"fib saddr type local goto {svc_chain}"]
            if has_external:
                rules.append(f"goto {external_policy_chain}")
        c.chain(ext_chain, rules)

    masq = []
    if opts.masquerade_all:
        masq = [f"ip daddr {svc.cluster_ip} {proto} dport {port} jump mark-for-masquerade"]
    elif opts.cluster_cidr:
        masq = [f"ip daddr {svc.cluster_ip} {proto} dport {port} ip saddr != {opts.cluster_cidr} "
                "jump mark-for-masquerade"]
    if cat.cluster and svc.uses_cluster_endpoints:
        c.chain(svc_chain, [*(masq if internal_chain == svc_chain else []),
                            *_dispatch(c, svc_chain, name, svc, cat.cluster)])
    if cat.local and svc.uses_local_endpoints:
        c.chain(local_chain, [*(masq if internal_chain == local_chain else []),
                              *_dispatch(c, local_chain, name, svc, cat.local)])
    for ep in cat.all_reachable:
        c.element("hairpin", f"{ep.ip} . {ep.ip}")
        if svc.session_affinity:
            ep_base = names.nft_endpoint_base(name, ep)
            c.add_set(f"affinity-{ep_base}", "set",
                      ("type ipv4_addr", "flags dynamic,timeout", f"timeout {svc.sticky_seconds}s"), True)
            c.chain(f"endpoint-{ep_base}", [f"update @affinity-{ep_base} {{ ip saddr }}",
                                            f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}"])
    return no_local_int, no_local_ext
