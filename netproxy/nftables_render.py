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
from collections.abc import Iterator
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
# the sets every table has whose elements several service ports can share (a multi-port service's
# ClusterIP, an endpoint behind two services); the per-service maps and sets have keys of one port only
GLOBAL_SETS = ("cluster-ips", "service-ips", "service-nodeports", "no-endpoint-services", "no-endpoint-nodeports",
               "hairpin")


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
        self.release({c for c in self.slots if c not in alive})

    def release(self, dead: set[str]) -> None:
        """Free the slots of `dead` chains, in the order they were first given (as release_except does)."""
        if dead:
            for chain in [c for c in self.slots if c in dead]:
                self.free.append(self.slots.pop(chain))
        self.free = [f for f in self.free if f[1] > 0]


@dataclass
class Contribution:
    """What one service port adds to the table; replayed as is while the service does not change."""

    chains: list[tuple[str, list[str]]] = field(default_factory=list)
    elements: list[tuple[str, str, str]] = field(default_factory=list)
    sets: list[tuple[str, str, tuple[str, ...], bool]] = field(default_factory=list)
    no_local: tuple[int, int] = (0, 0)
    hairpin_ips: list[str] = field(default_factory=list)  # NftTable's renders: hairpin elements by endpoint IP


class BuildCache:
    """Contributions of the previous build, so a partial sync only recomputes changed services."""

    def __init__(self) -> None:
        self.contributions: dict[ServicePortName, Contribution] = {}


class _Collect:
    """Where `_service` writes: the table being built (if any) and the current service's Contribution.

    Slots come from the allocators, and are recorded in `used`; or, to render a service again
    exactly as it was rendered before, from `replay` (the offsets recorded then)."""

    def __init__(self, state: NftState | None, dnat_slots: SlotAllocator, chain_slots: SlotAllocator,
                 by_ip: bool = False) -> None:
        self.state = state
        self.dnat_slots = dnat_slots
        self.chain_slots = chain_slots
        self.current: Contribution | None = None
        self.replay: Iterator[int] | None = None
        self.used: list[int] = []
        self.by_ip = by_ip  # record hairpin elements as endpoint IPs (Contribution.hairpin_ips), not text

    def slot(self, allocator: SlotAllocator, chain: str, size: int) -> int:
        offset = next(self.replay) if self.replay is not None else allocator.get(chain, size)
        self.used.append(offset)
        return offset

    def element(self, set_name: str, key: str, value: str = "") -> None:
        if self.state is not None:
            self.state.sets[set_name].elements[key] = value
        if self.current is not None:
            self.current.elements.append((set_name, key, value))

    def hairpin(self, ip: str) -> None:
        if not self.by_ip:
            self.element("hairpin", f"{ip} . {ip}")
            return
        if self.state is not None:
            self.state.sets["hairpin"].elements[f"{ip} . {ip}"] = ""
        if self.current is not None:
            self.current.hairpin_ips.append(ip)

    def chain(self, name: str, rules: list[str]) -> None:
        if self.state is not None:
            self.state.chains[name] = (None, rules)
        if self.current is not None:
            self.current.chains.append((name, rules))

    def add_set(self, name: str, kind: str, decl: tuple[str, ...], keep_elements: bool = False) -> None:
        if self.state is not None and name not in self.state.sets:
            self.state.sets[name] = NamedSet(kind, decl, {}, keep_elements)
        if self.current is not None:
            self.current.sets.append((name, kind, decl, keep_elements))

    def replay_contribution(self, contribution: Contribution) -> None:
        assert self.state is not None
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


def fixed_state(opts: NftOptions) -> NftState:
    """The part of the table that does not depend on services: hooks, fixed chains, the global sets."""
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
    return state


def build(snap: Snapshot, opts: NftOptions, dnat_slots: SlotAllocator | None = None,
          chain_slots: SlotAllocator | None = None, cache: BuildCache | None = None) -> NftState:
    """The desired table for `snap`. Pass the backend's allocators to keep slots stable between syncs,
    and its cache to reuse what unchanged services contributed last time (partial syncs)."""
    state = fixed_state(opts)
    c = _Collect(state, dnat_slots or SlotAllocator(), chain_slots or SlotAllocator())
    previous = cache.contributions if cache is not None else {}
    contributions: dict[ServicePortName, Contribution] = {}
    for spn in sorted(snap.ports):
        contribution = previous.get(spn)
        if contribution is not None and snap.changed is not None and spn.service not in snap.changed:
            c.replay_contribution(contribution)
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
        offset = c.slot(c.dnat_slots, chain, n)
        for i, ep in enumerate(endpoints):
            c.element(dnat, str(offset + i), f"{ep.ip} . {ep.port}")
        return [f"meta l4proto {svc.protocol} dnat ip to numgen random mod {n} offset {offset} map @{dnat}"]
    rules = []
    for ep in endpoints:
        base = names.nft_endpoint_base(name, ep)
        rules.append(f"ip saddr @affinity-{base} goto endpoint-{base}")
    vmap = _dispatch_map(c, f"endpoint-chains-{shard(chain):02d}", "typeof numgen random mod 1 : verdict",
                         "endpoint chains of services with session affinity")
    offset = c.slot(c.chain_slots, chain, n)
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
        c.hairpin(ep.ip)
        if svc.session_affinity:
            ep_base = names.nft_endpoint_base(name, ep)
            c.add_set(f"affinity-{ep_base}", "set",
                      ("type ipv4_addr", "flags dynamic,timeout", f"timeout {svc.sticky_seconds}s"), True)
            c.chain(f"endpoint-{ep_base}", [f"update @affinity-{ep_base} {{ ip saddr }}",
                                            f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}"])
    return no_local_int, no_local_ext


@dataclass(slots=True)
class _Record:
    """What one service port was rendered from: enough to render it again, byte for byte."""

    svc: ServicePort
    endpoints: tuple[Endpoint, ...]
    offsets: tuple[int, ...]  # the slots `_dispatch` was given, in order


def _holdings(con: Contribution) -> Iterator[tuple[str, str, str]]:
    """(set, key, value) of each element a contribution adds; hairpin elements keyed by the endpoint IP."""
    yield from con.elements
    for ip in con.hairpin_ips:
        yield "hairpin", ip, ""


def _key_text(set_name: str, key: str) -> str:
    return f"{key} . {key}" if set_name == "hairpin" else key


def _hold(index: dict[str, dict[str, str]], extra: dict[tuple[str, str], int], set_name: str, key: str,
          value: str) -> bool:
    """Count one more holder of a global set's element (the last one's value wins, as in `build`);
    True if holders disagree on the value."""
    elements = index[set_name]
    conflict = False
    if key in elements:
        extra[(set_name, key)] = extra.get((set_name, key), 0) + 1
        conflict = elements[key] != value
    elements[key] = value
    return conflict


class NftTable:
    """The table as the last sync installed it, kept small: per service port only the inputs it was
    rendered from (`_Record`), the elements of the global sets (hairpin ones by endpoint IP, no text)
    and who uses each per-service set.

    The first sync writes `full_script(build(...))` without building the table in memory. Later
    syncs render the services in question twice, as installed (from their records) and as they are
    now, and write the difference of the few that differ: the transaction
    `diff_script(build(old), build(new))` writes, byte for byte (tests/unit/netproxy compares them),
    without building or comparing whole tables. Where two service ports claim one key with
    different values, or the options changed, `build` and `diff_script` themselves are used.
    """

    def __init__(self) -> None:
        self.dnat_slots = SlotAllocator()
        self.chain_slots = SlotAllocator()
        self.records: dict[ServicePortName, _Record] = {}
        self.by_service: dict[tuple[str, str], list[ServicePortName]] = {}
        self.opts: NftOptions | None = None  # what the installed table was rendered with; None: nothing installed
        self.index: dict[str, dict[str, str]] = {name: {} for name in GLOBAL_SETS}  # installed global elements
        self.extra: dict[tuple[str, str], int] = {}  # holders beyond the first of such an element
        self.conflicted = False
        self.set_decls: dict[str, tuple[str, tuple[str, ...], bool]] = {}  # per-service sets: kind, decl, keep
        self.set_users: dict[str, set[ServicePortName]] = {}
        self.rules = self.elements = self.chains = 0
        self.no_local = (0, 0)

    @property
    def installed(self) -> bool:
        return self.opts is not None

    def stats(self) -> tuple[dict[str, int], int, int]:
        return {"rules": self.rules, "elements": self.elements, "chains": self.chains}, *self.no_local

    def reset(self) -> None:
        """Forget everything (the kernel's table is unknown): the next sync replaces the table."""
        self.__init__()  # type: ignore[misc]

    # -- rendering ---------------------------------------------------------------------------

    @staticmethod
    def _render(c: _Collect, spn: ServicePortName, svc: ServicePort, endpoints: tuple[Endpoint, ...],
                opts: NftOptions, replay: tuple[int, ...] | None) -> tuple[Contribution, tuple[int, ...]]:
        c.current, c.used = Contribution(), []
        c.replay = iter(replay) if replay is not None else None
        contribution = c.current
        contribution.no_local = _service(c, spn, svc, endpoints, opts)
        c.current, c.replay = None, None
        return contribution, tuple(c.used)

    def _rendered(self, spn: ServicePortName) -> Contribution:
        """A service port as installed."""
        assert self.opts is not None
        record = self.records[spn]
        c = _Collect(None, self.dnat_slots, self.chain_slots, by_ip=True)
        return self._render(c, spn, record.svc, record.endpoints, self.opts, record.offsets)[0]

    def installed_state(self) -> NftState:
        """The whole installed table, built from the records (for tests and the reference path)."""
        assert self.opts is not None
        state = fixed_state(self.opts)
        c = _Collect(state, self.dnat_slots, self.chain_slots)
        for spn in sorted(self.records):
            record = self.records[spn]
            self._render(c, spn, record.svc, record.endpoints, self.opts, record.offsets)
        return state

    # -- syncs -------------------------------------------------------------------------------

    def sync_script(self, snap: Snapshot, opts: NftOptions) -> str:
        """The transaction taking the installed table to `snap` ("" if none is needed); afterwards the
        table counts as installed. If the transaction fails, the caller must `reset()`."""
        script: str | None = None
        if self.opts is None:
            script = self._install(snap, opts)
        elif not self.conflicted and opts == self.opts:
            if snap.changed is None:
                script = self._diff(snap, list(self.records), list(snap.ports.values()), None)
            else:
                changed = snap.changed
                script = self._diff(snap, [spn for key in changed for spn in self.by_service.get(key, ())],
                                    [sp for key in changed for sp in snap.ports_of(key)], changed)
        return script if script is not None else self._rebuild(snap, opts)

    def _install(self, snap: Snapshot, opts: NftOptions) -> str | None:
        """`full_script(build(snap))`, written service by service."""
        fixed = fixed_state(opts)
        decls = {name: (s.kind, s.decl) for name, s in fixed.sets.items()}
        chain_lines: list[str] = []
        chain_names = set(fixed.chains)
        index: dict[str, dict[str, str]] = {name: {} for name in GLOBAL_SETS}
        extra: dict[tuple[str, str], int] = {}
        per_set: dict[str, list[str]] = {}
        records: dict[ServicePortName, _Record] = {}
        set_decls: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        set_users: dict[str, set[ServicePortName]] = {}
        conflict = False
        rules, no_int, no_ext = fixed.rule_count, 0, 0
        c = _Collect(None, self.dnat_slots, self.chain_slots, by_ip=True)
        for spn in sorted(snap.ports):
            svc, endpoints = snap.ports[spn], snap.endpoints_of(spn)
            con, used = self._render(c, spn, svc, endpoints, opts, None)
            records[spn] = _Record(svc, endpoints, used)
            for name, chain_rules in con.chains:
                if name in chain_names:
                    return None  # one chain name for two service ports (a truncated name): let build decide
                chain_names.add(name)
                chain_lines += [f"\tchain {name} {{", *(f"\t\t{r}" for r in chain_rules), "\t}"]
                rules += len(chain_rules)
            for name, kind, decl, keep in con.sets:
                decls.setdefault(name, (kind, decl))
                set_decls.setdefault(name, (kind, decl, keep))
                set_users.setdefault(name, set()).add(spn)
            for set_name, key, value in _holdings(con):
                if set_name in GLOBAL_SETS:
                    conflict = _hold(index, extra, set_name, key, value) or conflict
                else:
                    per_set.setdefault(set_name, []).append(_element_text(key, value))
            no_int += con.no_local[0]
            no_ext += con.no_local[1]
        self.dnat_slots.release(set())
        self.chain_slots.release(set())

        lines = [f"add table ip {TABLE}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
                 '\tcomment "rules for kube-proxy"']
        for name, (kind, decl) in decls.items():
            lines += [f"\t{kind} {name} {{", *(f"\t\t{d}" for d in decl), "\t}"]
        for name, (hook, chain_rules) in fixed.chains.items():
            lines += [f"\tchain {name} {{", *([f"\t\t{hook}"] if hook else []), *(f"\t\t{r}" for r in chain_rules),
                      "\t}"]
        lines += chain_lines
        del chain_lines
        lines.append("}")
        elements = 0
        for name in decls:
            if name in GLOBAL_SETS:
                texts: list[str] | None = None
                members = index[name]
                elements += len(members)
                if members:
                    lines.append(f"add element ip {TABLE} {name} {{ " + ", ".join(
                        _element_text(_key_text(name, k), v) for k, v in members.items()) + " }")
                continue
            texts = per_set.pop(name, None)
            if texts is None and name in fixed.sets:
                texts = [_element_text(k, v) for k, v in fixed.sets[name].elements.items()]
            if texts:
                elements += len(texts)
                lines.append(f"add element ip {TABLE} {name} {{ " + ", ".join(texts) + " }")
        script = "\n".join(lines) + "\n"
        self.records, self.opts, self.index, self.extra, self.conflicted = records, opts, index, extra, conflict
        self.by_service = {}
        for spn in records:
            self.by_service.setdefault(spn.service, []).append(spn)
        self.set_decls, self.set_users = set_decls, set_users
        self.rules, self.elements, self.chains = rules, elements, len(chain_names)
        self.no_local = (no_int, no_ext)
        return script

    def _rebuild(self, snap: Snapshot, opts: NftOptions) -> str:
        """`build` + `diff_script` (or `full_script`) themselves, then records of every service port."""
        old = self.installed_state() if self.opts is not None else None
        changed = snap.changed if old is not None else None
        state = fixed_state(opts)
        index: dict[str, dict[str, str]] = {name: {} for name in GLOBAL_SETS}
        extra: dict[tuple[str, str], int] = {}
        c = _Collect(state, self.dnat_slots, self.chain_slots, by_ip=True)
        records: dict[ServicePortName, _Record] = {}
        set_decls: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        set_users: dict[str, set[ServicePortName]] = {}
        conflict = False
        no_int = no_ext = 0
        for spn in sorted(snap.ports):
            svc, endpoints = snap.ports[spn], snap.endpoints_of(spn)
            previous = self.records.get(spn) if changed is not None and spn.service not in changed else None
            if previous is not None:  # unchanged since installed: rendered again exactly as then
                svc, endpoints = previous.svc, previous.endpoints
            con, used = self._render(c, spn, svc, endpoints, opts, previous.offsets if previous is not None else None)
            records[spn] = previous or _Record(svc, endpoints, used)
            for name, kind, decl, keep in con.sets:
                set_decls.setdefault(name, (kind, decl, keep))
                set_users.setdefault(name, set()).add(spn)
            for set_name, key, value in _holdings(con):
                if set_name in GLOBAL_SETS:
                    conflict = _hold(index, extra, set_name, key, value) or conflict
            no_int += con.no_local[0]
            no_ext += con.no_local[1]
        state.no_local_internal, state.no_local_external = no_int, no_ext
        alive = set(state.chains)
        self.dnat_slots.release_except(alive)
        self.chain_slots.release_except(alive)
        script = full_script(state) if old is None else diff_script(old, state)
        self.records, self.opts, self.index, self.extra, self.conflicted = records, opts, index, extra, conflict
        self.by_service = {}
        for spn in records:
            self.by_service.setdefault(spn.service, []).append(spn)
        self.set_decls, self.set_users = set_decls, set_users
        self.rules, self.elements, self.chains = state.rule_count, state.element_count, len(state.chains)
        self.no_local = (no_int, no_ext)
        return script

    def _diff(self, snap: Snapshot, old_spns: list[ServicePortName], new_ports: list[ServicePort],
              changed: set[tuple[str, str]] | None) -> str | None:
        """The transaction for these service ports (as installed: `old_spns`; as now: `new_ports`),
        or None when only `_rebuild` is right. Ports whose rendering did not change are left out."""
        opts = self.opts
        assert opts is not None
        new_by_name = {sp.name: sp for sp in new_ports}
        c = _Collect(None, self.dnat_slots, self.chain_slots, by_ip=True)
        olds: list[tuple[ServicePortName, Contribution]] = []
        news: list[tuple[ServicePortName, Contribution]] = []
        records: dict[ServicePortName, _Record] = {}
        for spn in sorted({*old_spns, *new_by_name}):
            old_con = self._rendered(spn) if spn in self.records else None
            sp = new_by_name.get(spn)
            new_con = None
            if sp is not None:
                endpoints = snap.endpoints_of(spn)
                new_con, used = self._render(c, spn, sp, endpoints, opts, None)
                records[spn] = _Record(sp, endpoints, used)
            if old_con is not None and old_con == new_con:
                continue  # renders as installed: nothing to write
            if old_con is not None:
                olds.append((spn, old_con))
            if new_con is not None:
                news.append((spn, new_con))

        old_chains = {name: rules for _, con in olds for name, rules in con.chains}
        new_chains = {name: rules for _, con in news for name, rules in con.chains}
        if len(old_chains) != sum(len(con.chains) for _, con in olds) or \
                len(new_chains) != sum(len(con.chains) for _, con in news):
            return None  # one chain name for two service ports (a truncated name): let build decide
        changed_chains = [n for n, rules in new_chains.items() if old_chains.get(n) != rules]
        stale_chains = [n for n in old_chains if n not in new_chains]

        # per-service sets: who uses them after this sync
        old_set = {spn for spn, _ in olds}
        users_after: dict[str, set[ServicePortName]] = {}
        for _, con in olds:
            for name, *_ in con.sets:
                users_after.setdefault(name, self.set_users.get(name, set()) - old_set)
        decls: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        for spn, con in news:
            for name, kind, decl, keep in con.sets:
                users_after.setdefault(name, self.set_users.get(name, set()) - old_set).add(spn)
                decls.setdefault(name, (kind, decl, keep))
        added_sets = [n for n in decls if n not in self.set_decls]
        stale_sets = {n for n, users in users_after.items() if not users}

        # elements: who holds each touched key before (these ports as installed) and after
        old_hold: dict[tuple[str, str], list[str]] = {}
        for _, con in olds:
            for set_name, key, value in _holdings(con):
                old_hold.setdefault((set_name, key), []).append(value)
        new_hold: dict[tuple[str, str], list[str]] = {}
        for _, con in news:
            for set_name, key, value in _holdings(con):
                new_hold.setdefault((set_name, key), []).append(value)
        outcome: dict[tuple[str, str], tuple[int, str | None, int, str | None]] = {}
        for sk in (*old_hold, *(k for k in new_hold if k not in old_hold)):
            set_name, key = sk
            held_before, held_after = old_hold.get(sk, []), new_hold.get(sk, [])
            if set_name in GLOBAL_SETS:
                installed = self.index[set_name]
                before = 1 + self.extra.get(sk, 0) if key in installed else 0
                value_before = installed.get(key)
            else:
                before, value_before = len(held_before), (held_before[-1] if held_before else None)
            others = before - len(held_before)  # holders among the ports left alone
            if others < 0 or len(set(held_before)) > 1 or len(set(held_after)) > 1:
                return None
            if others and held_after and held_after[0] != value_before:
                return None  # a port claims a key another one holds with another value
            after = others + len(held_after)
            value_after = value_before if others else (held_after[0] if held_after else None)
            outcome[sk] = (before, value_before, after, value_after)

        def set_rank(name: str) -> tuple[int, ServicePortName | None, int]:
            """Where `name` is in a built table's sets: the global ones first, then by first user."""
            if name in GLOBAL_SETS:
                return (0, None, GLOBAL_SETS.index(name))
            first = min(users_after.get(name) or self.set_users[name])
            con = next((con for spn, con in news if spn == first), None) or self._rendered(first)
            return (1, first, next(i for i, (n, *_) in enumerate(con.sets) if n == name))

        gone: dict[str, dict[str, None]] = {}
        for _, con in olds:
            for set_name, key, _value in _holdings(con):
                before, value_before, after, value_after = outcome[(set_name, key)]
                if before and (not after or value_after != value_before) and set_name not in stale_sets:
                    gone.setdefault(set_name, {})[key] = None
        added: dict[str, dict[str, str]] = {}
        for _, con in news:
            for set_name, key, _value in _holdings(con):
                before, value_before, after, value_after = outcome[(set_name, key)]
                if after and (not before or value_after != value_before):
                    added.setdefault(set_name, {})[key] = value_after or ""
        set_order = sorted({*gone, *added}, key=set_rank)

        t = f"ip {TABLE}"
        out: list[str] = []
        for name in changed_chains:
            out.append(f"flush chain {t} {name}" if name in old_chains else f"add chain {t} {name}")
        out += [f"flush chain {t} {name}" for name in stale_chains]
        for name in sorted(added_sets, key=set_rank):
            kind, decl, _ = decls[name]
            out.append(f"add {kind} {t} {name} {{ {'; '.join(decl)}; }}")
        for name in set_order:
            if gone.get(name):
                out.append(f"delete element {t} {name} {{ {', '.join(_key_text(name, k) for k in gone[name])} }}")
        for name in changed_chains:
            out += [f"add rule {t} {name} {rule}" for rule in new_chains[name]]
        for name in set_order:
            if added.get(name):
                out.append(f"add element {t} {name} {{ " + ", ".join(
                    _element_text(_key_text(name, k), v) for k, v in added[name].items()) + " }")
        out += [f"delete chain {t} {name}" for name in stale_chains]
        old_kinds: dict[str, str] = {}
        for _, con in olds:
            for name, kind, *_ in con.sets:
                old_kinds.setdefault(name, kind)
        out += [f"delete {kind} {t} {name}" for name, kind in old_kinds.items() if name in stale_sets]

        # commit
        for spn in old_spns:
            if spn not in new_by_name:
                del self.records[spn]
        self.records.update(records)
        if changed is None:
            self.by_service = {}
            for spn in sorted(self.records):
                self.by_service.setdefault(spn.service, []).append(spn)
        else:
            for service in changed:
                spns = [sp.name for sp in snap.ports_of(service)]
                if spns:
                    self.by_service[service] = spns
                else:
                    self.by_service.pop(service, None)
        for sk, (before, _, after, value_after) in outcome.items():
            set_name, key = sk
            self.elements += (after > 0) - (before > 0)
            if set_name not in GLOBAL_SETS:
                continue
            if after:
                self.index[set_name][key] = value_after or ""
            else:
                self.index[set_name].pop(key, None)
            if after > 1:
                self.extra[sk] = after - 1
            else:
                self.extra.pop(sk, None)
        for name, users in users_after.items():
            if users:
                self.set_users[name] = users
                if name not in self.set_decls:
                    self.set_decls[name] = decls[name]
            else:
                self.set_users.pop(name, None)
                self.set_decls.pop(name, None)
        dead = set(stale_chains)
        self.dnat_slots.release(dead)
        self.chain_slots.release(dead)
        self.rules += sum(len(r) for r in new_chains.values()) - sum(len(r) for r in old_chains.values())
        self.chains += len(new_chains) - len(old_chains)
        self.no_local = (self.no_local[0] + sum(con.no_local[0] for _, con in news)
                         - sum(con.no_local[0] for _, con in olds),
                         self.no_local[1] + sum(con.no_local[1] for _, con in news)
                         - sum(con.no_local[1] for _, con in olds))
        return "\n".join(out) + "\n" if out else ""
