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
        return " ".join(["-A", self.chain, *self.extra, "-m comment --comment", f'"{self.comment}"',
                         "-j", self.target])


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
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, *parts: str) -> None:
        self.lines.append(" ".join(parts))

    def __len__(self) -> int:
        return len(self.lines)


def render(snap: Snapshot, opts: RenderOptions, existing_chains: set[str] | None = None,
           cache: names.NameCache | None = None) -> Rendered:
    """Render one sync. `existing_chains`: our service chains now in the kernel (stale ones are removed)."""
    cache = cache or names.NameCache()
    sep_name = cache.sep_chain
    filter_chains, filter_rules, nat_chains, nat_rules = _Lines(), _Lines(), _Lines(), _Lines()
    skipped_rules = _Lines()  # rules of unchanged services, counted for the metrics only
    for chain in FILTER_CHAINS:
        filter_chains.add(f":{chain} - [0:0]")
    for chain in NAT_CHAINS:
        nat_chains.add(f":{chain} - [0:0]")
    nat_rules.add("-A KUBE-POSTROUTING -m mark ! --mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j RETURN")
    nat_rules.add("-A KUBE-POSTROUTING -j MARK --xor-mark", MASQ_MARK)
    nat_rules.add("-A KUBE-POSTROUTING -m comment --comment", _q("kubernetes service traffic requiring SNAT"),
                  "-j MASQUERADE" + (" --random-fully" if opts.random_fully else ""))
    nat_rules.add("-A KUBE-MARK-MASQ -j MARK --or-mark", MASQ_MARK)

    active: set[str] = set()
    total_endpoints = sum(len(snap.endpoints_of(n)) for n in snap.ports)
    large = total_endpoints > LARGE_CLUSTER_ENDPOINTS
    no_local_int = no_local_ext = 0

    for name in sorted(snap.ports):
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

        int_target = int_comment = ext_target = ext_comment = ""
        if not cat.has_any:
            int_target = ext_target = "REJECT"
            int_comment = ext_comment = _q(f"{spn} has no endpoints")
        else:
            if not has_internal:
                int_target, int_comment = "DROP", _q(f"{spn} has no local endpoints")
                no_local_int += 1
            if not has_external:
                ext_target, ext_comment = "DROP", _q(f"{spn} has no local endpoints")
                no_local_ext += 1

        port = str(svc.port)
        if has_internal:
            nat_rules.add("-A KUBE-SERVICES -m comment --comment", _q(f"{spn} cluster IP"), "-m", proto, "-p",
                          proto, "-d", svc.cluster_ip, "--dport", port, "-j", internal_chain)
        else:
            filter_rules.add("-A KUBE-SERVICES -m comment --comment", int_comment, "-m", proto, "-p", proto,
                             "-d", svc.cluster_ip, "--dport", port, "-j", int_target)
        for ip in svc.external_ips:
            if cat.has_any:
                nat_rules.add("-A KUBE-SERVICES -m comment --comment", _q(f"{spn} external IP"), "-m", proto,
                              "-p", proto, "-d", ip, "--dport", port, "-j", ext_chain)
            if not has_external:
                filter_rules.add("-A KUBE-EXTERNAL-SERVICES -m comment --comment", ext_comment, "-m", proto,
                                 "-p", proto, "-d", ip, "--dport", port, "-j", ext_target)
        for ip in svc.load_balancer_ips:
            if cat.has_any:
                nat_rules.add("-A KUBE-SERVICES -m comment --comment", _q(f"{spn} loadbalancer IP"), "-m",
                              proto, "-p", proto, "-d", ip, "--dport", port, "-j", ext_chain)
        if not has_external:
            for ip in svc.load_balancer_ips:
                filter_rules.add("-A KUBE-EXTERNAL-SERVICES -m comment --comment", ext_comment, "-m", proto,
                                 "-p", proto, "-d", ip, "--dport", port, "-j", ext_target)
        if svc.node_port:
            node_port = str(svc.node_port)
            if cat.has_any:
                nat_rules.add("-A KUBE-NODEPORTS -m comment --comment", spn, "-m", proto, "-p", proto,
                              "--dport", node_port, "-j", ext_chain)
            if not has_external:
                filter_rules.add("-A KUBE-EXTERNAL-SERVICES -m comment --comment", ext_comment,
                                 "-m addrtype --dst-type LOCAL -m", proto, "-p", proto, "--dport", node_port,
                                 "-j", ext_target)
        if svc.health_check_node_port:
            filter_rules.add("-A KUBE-NODEPORTS -m comment --comment", _q(f"{spn} health check node port"),
                             "-m tcp -p tcp --dport", str(svc.health_check_node_port), "-j ACCEPT")

        chains, rules = nat_chains, nat_rules
        if snap.changed is not None and name.service not in snap.changed:
            # unchanged since the last sync: its chains stay as they are in the kernel
            active.update(c for c, used in ((ext_chain, uses_ext_chain), (svc_chain, uses_cluster_chain),
                                            (svl_chain, uses_local_chain)) if used)
            active.update(sep_name(name, ep) for ep in cat.all_reachable)
            skipped_rules.lines.extend([""] * cache.rule_counts.get(name, 0))
            continue
        before = len(rules)

        if has_internal:
            match = ("-m comment --comment", _q(f"{spn} cluster IP"), "-m", proto, "-p", proto, "-d",
                     svc.cluster_ip, "--dport", port)
            if opts.masquerade_all:
                rules.add("-A", internal_chain, *match, "-j KUBE-MARK-MASQ")
            elif opts.cluster_cidr:
                rules.add("-A", internal_chain, *match, "! -s", opts.cluster_cidr, "-j KUBE-MARK-MASQ")

        if uses_ext_chain:
            chains.add(f":{ext_chain} - [0:0]")
            active.add(ext_chain)
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
                chains.add(f":{chain} - [0:0]")
                active.add(chain)
                _service_to_endpoints(rules, spn, name, svc, chain, eps, large, sep_name)

        for ep in cat.all_reachable:
            sep = sep_name(name, ep)
            chains.add(f":{sep} - [0:0]")
            active.add(sep)
            head = ["-A", sep] + ([] if large else ["-m comment --comment", spn])
            rules.add(*head, "-s", ep.ip, "-j KUBE-MARK-MASQ")
            affinity = ["-m recent --name", sep, "--set"] if svc.session_affinity else []
            rules.add(*head, *affinity, "-m", proto, "-p", proto, "-j DNAT --to-destination", str(ep))
        cache.rule_counts[name] = len(rules) - before

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

    parts = ["*filter", *filter_chains.lines, *filter_rules.lines, "COMMIT",
             "*nat", *nat_chains.lines, *nat_rules.lines, "COMMIT", ""]
    return Rendered("\n".join(parts), active, len(filter_rules), len(nat_rules) + len(skipped_rules) - deleted,
                    deleted, no_local_int, no_local_ext)


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
