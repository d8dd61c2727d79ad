"""iptables mode: programs the rules of `iptables_render` with one iptables-restore per sync.

Jump rules from the built-in chains are ensured on full syncs only (as upstream),
after the restore that creates the chains they point at. The backend remembers
which of its service chains are in the kernel, read from iptables-save on each
full sync (chain names and built-in rules only), so stale chains from an
earlier run or a deleted service are removed in the same restore — and only
chains whose names it would create itself (KUBE-SVC-, KUBE-SEP-, ...).
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace

from netproxy import execs
from netproxy.backend import ModeUnavailable, SyncStats
from netproxy.iptables_render import FILTER_CHAINS, JUMP_RULES, NAT_CHAINS, RenderCache, RenderOptions, render
from netproxy.names import is_service_chain
from netproxy.nodeaddrs import nodeport_ips
from netproxy.tracker import Snapshot

log = logging.getLogger(__name__)


def detect_variant(requested: str = "auto") -> str:
    """"nft" or "legacy". auto: the variant that already holds rules (legacy only if it has more), else nft."""
    if requested in ("nft", "legacy"):
        return requested

    def rule_count(tool: str) -> int:
        if not execs.have(tool):
            return -1
        try:
            out = subprocess.run([tool], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return -1
        kube = sum(1 for line in out.splitlines() if "KUBE-" in line)
        return kube * 1000 + sum(1 for line in out.splitlines() if line.startswith("-"))

    legacy, nft = rule_count("iptables-legacy-save"), rule_count("iptables-nft-save")
    if nft < 0 and legacy >= 0:
        return "legacy"
    return "legacy" if legacy > nft else "nft"


@dataclass(frozen=True)
class SavedTable:
    """One table of iptables-save: its chain names and the rules of its built-in chains (where our jumps are)."""

    chains: frozenset[str]
    builtin_rules: frozenset[str]


EMPTY_TABLE = SavedTable(frozenset(), frozenset())
BUILTIN_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})


_BUILTIN_ALTERNATIVES = "|".join(sorted(BUILTIN_CHAINS))
SAVE_LINES_KEPT = re.compile(rf"^(?:\*(?P<table>\S+)|:(?P<chain>\S+) .*|(?P<builtin>-A (?:{_BUILTIN_ALTERNATIVES}) .*)"
                             r"|(?P<commit>COMMIT))$", re.M)


def parse_save(text: str) -> dict[str, SavedTable]:
    """Linear in the output's size, and only the lines kept become strings: at 10k services the nat table
    alone is 320,000 rules."""
    tables: dict[str, SavedTable] = {}
    name: str | None = None
    chains: set[str] = set()
    builtin: set[str] = set()
    for match in SAVE_LINES_KEPT.finditer(text):
        table, chain, rule, commit = match.group("table", "chain", "builtin", "commit")
        if table is not None:
            name, chains, builtin = table, set(), set()
        elif name is None:
            continue
        elif chain is not None:
            chains.add(chain)
        elif rule is not None:
            builtin.add(rule)
        elif commit is not None:
            tables[name] = SavedTable(frozenset(chains), frozenset(builtin))
            name = None
    return tables


class IptablesBackend:
    mode = "iptables"

    def __init__(self, opts: RenderOptions, variant: str = "nft", nodeport_cidrs: tuple[str, ...] = ()) -> None:
        self.opts = opts
        self.nodeport_cidrs = nodeport_cidrs
        self.variant = variant
        suffix = "legacy" if variant == "legacy" else "nft"
        self.iptables = f"iptables-{suffix}"
        self.restore = f"iptables-{suffix}-restore"
        self.save = f"iptables-{suffix}-save"
        self._existing: set[str] | None = None
        self._cache = RenderCache()
        self.script_hook: Callable[[str], None] | None = None  # sees each restore input (benchmarks, debugging)

    def check(self) -> None:
        for tool in (self.iptables, self.restore, self.save):
            if not execs.have(tool):
                raise ModeUnavailable(f"iptables mode needs {tool} (Debian package iptables)")

    async def saved_tables(self) -> dict[str, SavedTable]:
        """What a sync needs of iptables-save's output (one call for all tables)."""
        return parse_save((await execs.run([self.save])).stdout)

    async def existing_service_chains(self, tables: dict[str, SavedTable] | None = None) -> set[str]:
        nat = (tables or await self.saved_tables()).get("nat", EMPTY_TABLE)
        return {c for c in nat.chains if is_service_chain(c)}

    async def ensure_jumps(self, tables: dict[str, SavedTable]) -> None:
        """The jumps from the built-in chains to ours, which the sync's restore has just created.

        `tables` is what iptables-save showed before that restore: a jump it lists is there; a jump to a
        chain that did not exist cannot be (a fresh node: all of them go in one restore); otherwise
        `iptables -C` decides, as iptables-save may spell a rule differently.
        """
        missing: dict[str, list[str]] = {}
        for jump in JUMP_RULES:
            table = tables.get(jump.table, EMPTY_TABLE)
            if jump.saved_form() in table.builtin_rules:
                continue
            if jump.target in table.chains:
                exists = await execs.run([self.iptables, "-w", "-t", jump.table, "-C", jump.chain, *jump.args()],
                                         check=False)
                if exists.code == 0:
                    continue
            missing.setdefault(jump.table, []).append(jump.insert_form())
        if missing:
            text = "".join(f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n" for table, lines in missing.items())
            await execs.run([self.restore, "-w", "--noflush"], stdin=text)

    async def sync(self, snap: Snapshot) -> SyncStats:
        full = snap.changed is None
        tables: dict[str, SavedTable] = {}
        if full:
            ips = await asyncio.to_thread(nodeport_ips, list(self.nodeport_cidrs))  # pyroute2 wants no loop
            self.opts = replace(self.opts, nodeport_ips=ips)
            tables = await self.saved_tables()
            self._existing = await self.existing_service_chains(tables)
        rendered = render(snap, self.opts, self._existing, self._cache)
        if self.script_hook is not None:
            self.script_hook(rendered.text)
        try:
            await execs.run([self.restore, "-w", "--noflush", "--counters"], stdin=rendered.text)
        except execs.ToolError:
            self._existing = None  # unknown now: the next (full) sync reads it again
            raise
        self._existing = set(rendered.active_nat_chains)
        if full:
            await self.ensure_jumps(tables)
            self._cache.forget_except(self._existing)
        return SyncStats({"filter": rendered.filter_rules, "nat": rendered.nat_rules},
                         rendered.no_local_internal, rendered.no_local_external)

    async def cleanup(self) -> None:
        """Remove everything this mode creates (`pyk8s proxy --cleanup`)."""
        for jump in JUMP_RULES:
            await execs.run([self.iptables, "-w", "-t", jump.table, "-D", jump.chain, *jump.args()], check=False)
        chains = await self.existing_service_chains()
        nat = ["*nat"] + [f":{c} - [0:0]" for c in (*NAT_CHAINS, *sorted(chains))]
        nat += [f"-X {c}" for c in (*NAT_CHAINS, *sorted(chains))]
        filt = ["*filter"] + [f":{c} - [0:0]" for c in FILTER_CHAINS] + [f"-X {c}" for c in FILTER_CHAINS]
        text = "\n".join([*filt, "COMMIT", *nat, "COMMIT", ""])
        await execs.run([self.restore, "-w", "--noflush"], stdin=text, check=False)
