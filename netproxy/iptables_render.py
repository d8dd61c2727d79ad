"""The iptables ruleset of one sync, as `iptables-restore --noflush` input.

The layout is upstream's: nat KUBE-SERVICES dispatching on destination to
KUBE-SVC-* (Cluster policy), KUBE-SVL-* (Local policy) and KUBE-EXT-* (external
traffic) chains, each endpoint in a KUBE-SEP-* chain that marks hairpin traffic
and DNATs; KUBE-MARK-MASQ / KUBE-POSTROUTING masquerade; filter chains reject
traffic for services without endpoints. Rendering is pure (no kernel access) so
it can be compared with hand-written golden files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netproxy import names
from netproxy.model import Endpoint, ServicePort, ServicePortName, categorize
from netproxy.tracker import Snapshot

MASQ_MARK = "0x4000"
LARGE_CLUSTER_ENDPOINTS = 1000
FILTER_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
                 "KUBE-PROXY-FIREWALL")
NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")


@dataclass(frozen=True)
class JumpRule:
    """A rule in a built-in chain pointing at one of ours (kept outside the restore input)."""

    table: str
    chain: str
    target: str
    comment: str
    extra: tuple[str, ...] = ()

    def args(self) -> list[str]:
        return [*self.extra, "-m", "comment", "--comment", self.comment, "-j", self.target]

    def saved_form(self) -> str:
        """The rule as iptables-save prints it (a line of its output, without the newline)."""
        return " ".join(["-A", self.chain, *self._spec()])

    def insert_form(self) -> str:
        """The iptables-restore line that puts the rule first in its chain."""
        return " ".join(["-I", self.chain, "1", *self._spec()])

    def _spec(self) -> list[str]:
        return [*self.extra, "-m comment --comment", f'"{self.comment}"', "-j", self.target]


JUMP_RULES = (
    JumpRule("filter", "INPUT", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports"),
    JumpRule("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"),
    JumpRule("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall",
             ("-m", "conntrack", "--ctstate", "NEW")),
    JumpRule("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"),
    JumpRule("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals"),
    JumpRule("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules"),
)


@dataclass(frozen=True)
class RenderOptions:
    node_name: str
    cluster_cidr: str | None = None
    masquerade_all: bool = False
    # None: NodePorts on every local address (addrtype LOCAL); else these node IPs only.
    nodeport_ips: tuple[str, ...] | None = None
    random_fully: bool = True
    conntrack_liberal: bool = False


@dataclass
class Rendered:
    text: str
    active_nat_chains: set[str]
    filter_rules: int
    nat_rules: int
    deleted_chains: int
    no_local_internal: int = 0
    no_local_external: int = 0


def probability(n: int) -> str:
    return f"{1.0 / n:0.10f}"


def _q(text: str) -> str:
    return f'"{text}"'


class _Lines:
    """Rule lines, kept as one joined chunk per service port: a full sync at 10k services writes 320,000
    lines, and that many small strings alive at once would scatter the heap (the proxy's resident size
    would stay at that peak)."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.count = 0
        self._pending: list[str] = []

    def add(self, *parts: str) -> None:
        self._pending.append(" ".join(parts))

    def seal(self) -> str:
        """Join what was added since the last seal into one chunk; returns it."""
        if not self._pending:
            return ""
        chunk = "\n".join(self._pending)
        self.chunks.append(chunk)
        self.count += len(self._pending)
        self._pending = []
        return chunk

    def add_chunk(self, chunk: str, count: int) -> None:
        self.seal()
        if count:
            self.chunks.append(chunk)
            self.count += count

    def __len__(self) -> int:
        return self.count + len(self._pending)


@dataclass(frozen=True)
class ServiceRules:
    """What one service port wrote in the last sync that rendered it: a partial sync reuses its lines in
    the shared chains (KUBE-SERVICES, KUBE-NODEPORTS, filter) and leaves its own chains in the kernel."""

    filter_rules: str
    filter_count: int
    dispatch: str  # its lines in the shared nat chains
    dispatch_count: int
    own_count: int  # rules in its own chains (KUBE-SVC/SVL/EXT/SEP)
    chains: tuple[str, ...]  # its own chains
    no_local_internal: int
    no_local_external: int


class RenderCache(names.NameCache):
    """What earlier syncs of one backend rendered, per service port."""

    def __init__(self) -> None:
        super().__init__()
        self.services: dict[ServicePortName, ServiceRules] = {}


def render(snap: Snapshot, opts: RenderOptions, existing_chains: set[str] | None = None,
           cache: RenderCache | None = None) -> Rendered:
    """Render one sync. `existing_chains`: our service chains now in the kernel (stale ones are removed)."""
    cache = cache or RenderCache()
    if snap.changed is None:
        cache.services = {}
    filter_chains, filter_rules, nat_chains, nat_rules = _Lines(), _Lines(), _Lines(), _Lines()
    own_rules_kept = 0  # rules of unchanged services, left in the kernel (counted for the metrics)
    for chain in FILTER_CHAINS:
        filter_chains.add(f":{chain} - [0:0]")
    for chain in NAT_CHAINS:
        nat_chains.add(f":{chain} - [0:0]")
    nat_rules.add("-A KUBE-POSTROUTING -m mark ! --mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j RETURN")
    nat_rules.add("-A KUBE-POSTROUTING -j MARK --xor-mark", MASQ_MARK)
    nat_rules.add("-A KUBE-POSTROUTING -m comment --comment", _q("kubernetes service traffic requiring SNAT"),
                  "-j MASQUERADE" + (" --random-fully" if opts.random_fully else ""))
    nat_rules.add("-A KUBE-MARK-MASQ -j MARK --or-mark", MASQ_MARK)
    filter_chains.seal()
    nat_chains.seal()
    nat_rules.seal()

    active: set[str] = set()
    large = sum(len(snap.endpoints_of(n)) for n in snap.ports) > LARGE_CLUSTER_ENDPOINTS
    no_local_int = no_local_ext = 0

    for name in sorted(snap.ports):
        kept = cache.services.get(name)
        if kept is not None and snap.changed is not None and name.service not in snap.changed:
            # unchanged since the last sync: its chains stay as they are in the kernel
            filter_rules.add_chunk(kept.filter_rules, kept.filter_count)
            nat_rules.add_chunk(kept.dispatch, kept.dispatch_count)
            active.update(kept.chains)
            own_rules_kept += kept.own_count
            no_local_int += kept.no_local_internal
            no_local_ext += kept.no_local_external
            continue
        done = _render_service(name, snap, opts, large, cache.sep_chain)
        cache.services[name] = done.rules
        filter_rules.add_chunk(done.rules.filter_rules, done.rules.filter_count)
        nat_rules.add_chunk(done.rules.dispatch, done.rules.dispatch_count)
        nat_rules.add_chunk(done.own_rules, done.rules.own_count)
        nat_chains.add_chunk("\n".join(f":{c} - [0:0]" for c in done.rules.chains), len(done.rules.chains))
        active.update(done.rules.chains)
        no_local_int += done.rules.no_local_internal
        no_local_ext += done.rules.no_local_external
    for gone in cache.services.keys() - snap.ports.keys():
        del cache.services[gone]

    deleted = 0
    for chain in sorted((existing_chains or set()) - active):
        if names.is_service_chain(chain):
            nat_chains.add(f":{chain} - [0:0]")
            nat_rules.add("-X", chain)
            deleted += 1

    comment = _q("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    if opts.nodeport_ips is None:
        nat_rules.add("-A KUBE-SERVICES -m comment --comment", comment,
                      "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")
    else:
        for ip in opts.nodeport_ips:
            if not ip.startswith("127."):
                nat_rules.add("-A KUBE-SERVICES -m comment --comment", comment, "-d", ip, "-j KUBE-NODEPORTS")

    if not opts.conntrack_liberal:
        filter_rules.add("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP")
    filter_rules.add("-A KUBE-FORWARD -m comment --comment", _q("kubernetes forwarding rules"),
                     "-m mark --mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j ACCEPT")
    filter_rules.add("-A KUBE-FORWARD -m comment --comment", _q("kubernetes forwarding conntrack rule"),
                     "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    for lines in (filter_chains, filter_rules, nat_chains, nat_rules):
        lines.seal()

    parts = ["*filter", *filter_chains.chunks, *filter_rules.chunks, "COMMIT",
             "*nat", *nat_chains.chunks, *nat_rules.chunks, "COMMIT", ""]
    return Rendered("\n".join(parts), active, len(filter_rules), len(nat_rules) + own_rules_kept - deleted,
                    deleted, no_local_int, no_local_ext)


@dataclass(frozen=True)
class _RenderedService:
    rules: ServiceRules
    own_rules: str


def _render_service(name: ServicePortName, snap: Snapshot, opts: RenderOptions, large: bool,
                    sep_name: Callable[[ServicePortName, Endpoint], str]) -> _RenderedService:
    """Every line of one service port: its dispatch and filter lines, and its own chains."""
    svc = snap.ports[name]
    proto = svc.protocol
    spn = str(name)
    cat = categorize(snap.endpoints_of(name), svc)
    svc_chain, svl_chain, ext_chain = names.svc_chain(name), names.svl_chain(name), names.ext_chain(name)
    uses_cluster_chain = bool(cat.cluster) and svc.uses_cluster_endpoints
    uses_local_chain = bool(cat.local) and svc.uses_local_endpoints
    internal_chain, has_internal = svc_chain, cat.has_any
    if svc.internal_policy_local:
        internal_chain = svl_chain
        has_internal = has_internal and bool(cat.local)
    external_policy_chain, has_external = svc_chain, cat.has_any
    if svc.external_policy_local:
        external_policy_chain = svl_chain
        has_external = has_external and bool(cat.local)
    uses_ext_chain = cat.has_any and svc.externally_accessible
    no_local_int = no_local_ext = 0

    int_target = int_comment = ext_target = ext_comment = ""
    if not cat.has_any:
        int_target = ext_target = "REJECT"
        int_comment = ext_comment = _q(f"{spn} has no endpoints")
    else:
        if not has_internal:
            int_target, int_comment = "DROP", _q(f"{spn} has no local endpoints")
            no_local_int = 1
        if not has_external:
            ext_target, ext_comment = "DROP", _q(f"{spn} has no local endpoints")
            no_local_ext = 1

    dispatch, filt, rules = _Lines(), _Lines(), _Lines()
    chains: list[str] = []
    port = str(svc.port)
    if has_internal:
        dispatch.add("-A KUBE-SERVICES -m comment --comment", _q(f"{spn} cluster IP"), "-m", proto, "-p",
                     proto, "-d", svc.cluster_ip, "--dport", port, "-j", internal_chain)
    else:
        filt.add("-A KUBE-SERVICES -m comment --comment", int_comment, "-m", proto, "-p", proto,
                 "-d", svc.cluster_ip, "--dport", port, "-j", int_target)
    for ip in svc.external_ips:
        if cat.has_any:
            dispatch.add("-A KUBE-SERVICES -m comment --comment", _q(f"{spn} external IP"), "-m", proto,
                         "-p", proto, "-d", ip, "--dport", port, "-j", ext_chain)
        if not has_external:
            filt.add("-A KUBE-EXTERNAL-SERVICES -m comment --comment", ext_comment, "-m", proto,
                     "-p", proto, "-d", ip, "--dport", port, "-j", ext_target)
    for ip in svc.load_balancer_ips:
        if cat.has_any:
            dispatch.add("-A KUBE-SERVICES -m comment --comment", _q(f"{spn} loadbalancer IP"), "-m",
                         proto, "-p", proto, "-d", ip, "--dport", port, "-j", ext_chain)
    if not has_external:
        for ip in svc.load_balancer_ips:
            filt.add("-A KUBE-EXTERNAL-SERVICES -m comment --comment", ext_comment, "-m", proto,
                     "-p", proto, "-d", ip, "--dport", port, "-j", ext_target)
    if svc.node_port:
        node_port = str(svc.node_port)
        if cat.has_any:
            dispatch.add("-A KUBE-NODEPORTS -m comment --comment", spn, "-m", proto, "-p", proto,
                         "--dport", node_port, "-j", ext_chain)
        if not has_external:
            filt.add("-A KUBE-EXTERNAL-SERVICES -m comment --comment", ext_comment,
                     "-m addrtype --dst-type LOCAL -m", proto, "-p", proto, "--dport", node_port,
                     "-j", ext_target)
    if svc.health_check_node_port:
        filt.add("-A KUBE-NODEPORTS -m comment --comment", _q(f"{spn} health check node port"),
                 "-m tcp -p tcp --dport", str(svc.health_check_node_port), "-j ACCEPT")

    if has_internal:
        match = ("-m comment --comment", _q(f"{spn} cluster IP"), "-m", proto, "-p", proto, "-d",
                 svc.cluster_ip, "--dport", port)
        if opts.masquerade_all:
            rules.add("-A", internal_chain, *match, "-j KUBE-MARK-MASQ")
        elif opts.cluster_cidr:
            rules.add("-A", internal_chain, *match, "! -s", opts.cluster_cidr, "-j KUBE-MARK-MASQ")

    if uses_ext_chain:
        chains.append(ext_chain)
        if not svc.external_policy_local:
            rules.add("-A", ext_chain, "-m comment --comment",
                      _q(f"masquerade traffic for {spn} external destinations"), "-j KUBE-MARK-MASQ")
        else:
            if opts.cluster_cidr:
                rules.add("-A", ext_chain, "-m comment --comment",
                          _q(f"pod traffic for {spn} external destinations"), "-s", opts.cluster_cidr,
                          "-j", svc_chain)
            rules.add("-A", ext_chain, "-m comment --comment",
                      _q(f"masquerade LOCAL traffic for {spn} external destinations"),
                      "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
            rules.add("-A", ext_chain, "-m comment --comment",
                      _q(f"route LOCAL traffic for {spn} external destinations"),
                      "-m addrtype --src-type LOCAL -j", svc_chain)
        if has_external:
            rules.add("-A", ext_chain, "-j", external_policy_chain)

    for used, chain, eps in ((uses_cluster_chain, svc_chain, cat.cluster),
                             (uses_local_chain, svl_chain, cat.local)):
        if used:
            chains.append(chain)
            _service_to_endpoints(rules, spn, name, svc, chain, eps, large, sep_name)

    for ep in cat.all_reachable:
        sep = sep_name(name, ep)
        chains.append(sep)
        head = ["-A", sep] + ([] if large else ["-m comment --comment", spn])
        rules.add(*head, "-s", ep.ip, "-j KUBE-MARK-MASQ")
        affinity = ["-m recent --name", sep, "--set"] if svc.session_affinity else []
        rules.add(*head, *affinity, "-m", proto, "-p", proto, "-j DNAT --to-destination", str(ep))

    own_count = len(rules)
    return _RenderedService(
        ServiceRules(filt.seal(), filt.count, dispatch.seal(), dispatch.count, own_count, tuple(chains),
                     no_local_int, no_local_ext),
        rules.seal())


def _service_to_endpoints(rules: _Lines, spn: str, name: ServicePortName, svc: ServicePort, chain: str,
                          endpoints: tuple[Endpoint, ...], large: bool,
                          sep_name: Callable[[ServicePortName, Endpoint], str]) -> None:
    if svc.session_affinity:
        for ep in endpoints:
            sep = sep_name(name, ep)
            comment = [] if large else ["-m comment --comment", _q(f"{spn} -> {ep}")]
            rules.add("-A", chain, *comment, "-m recent --name", sep, "--rcheck --seconds",
                      str(svc.sticky_seconds), "--reap -j", sep)
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        sep = sep_name(name, ep)
        comment = [] if large else ["-m comment --comment", _q(f"{spn} -> {ep}")]
        stat = ["-m statistic --mode random --probability", probability(n - i)] if i < n - 1 else []
        rules.add("-A", chain, *comment, *stat, "-j", sep)
