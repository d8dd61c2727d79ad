"""iptables mode: programs the rules of `iptables_render` with one iptables-restore per sync.

Jump rules from the built-in chains are ensured with `iptables -C`/`-I` on full
syncs only (as upstream). The backend remembers which of its service chains are
in the kernel, read once from iptables-save at start, so stale chains from an
earlier run or a deleted service are removed in the same restore — and only
chains whose names it would create itself (KUBE-SVC-, KUBE-SEP-, ...).
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace

from netproxy import execs
from netproxy.backend import ModeUnavailable, SyncStats
from netproxy.iptables_render import FILTER_CHAINS, JUMP_RULES, NAT_CHAINS, RenderOptions, render
from netproxy.names import NameCache, is_service_chain
from netproxy.nodeaddrs import nodeport_ips
from netproxy.tracker import Snapshot

log = logging.getLogger(__name__)
CHAIN_LINE = re.compile(r"^:(\S+) ", re.M)


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
        self._names = NameCache()
        self.script_hook: Callable[[str], None] | None = None  # sees each restore input (benchmarks, debugging)

    def check(self) -> None:
        for tool in (self.iptables, self.restore, self.save):
            if not execs.have(tool):
                raise ModeUnavailable(f"iptables mode needs {tool} (Debian package iptables)")

    async def saved_tables(self) -> dict[str, str]:
        """iptables-save output per table (one call for all tables)."""
        out = (await execs.run([self.save])).stdout
        tables: dict[str, str] = {}
        current = None
        for line in out.splitlines():
            if line.startswith("*"):
                current = line[1:]
                tables[current] = ""
            elif current is not None:
                tables[current] += line + "\n"
        return tables

    async def existing_service_chains(self, tables: dict[str, str] | None = None) -> set[str]:
        nat = (tables or await self.saved_tables()).get("nat", "")
        return {c for c in CHAIN_LINE.findall(nat) if is_service_chain(c)}

    async def ensure_jumps(self, tables: dict[str, str]) -> None:
        """Our chains and the jumps to them from the built-in chains (only what is missing is called for)."""
        for table, chains in (("filter", FILTER_CHAINS), ("nat", NAT_CHAINS)):
            present = set(CHAIN_LINE.findall(tables.get(table, "")))
            for chain in chains:
                if chain not in present:
                    await execs.run([self.iptables, "-w", "-t", table, "-N", chain], check=False)
        for jump in JUMP_RULES:
            if jump.saved_form() in tables.get(jump.table, ""):
                continue
            exists = await execs.run([self.iptables, "-w", "-t", jump.table, "-C", jump.chain, *jump.args()],
                                     check=False)
            if exists.code != 0:
                await execs.run([self.iptables, "-w", "-t", jump.table, "-I", jump.chain, "1", *jump.args()])

    async def sync(self, snap: Snapshot) -> SyncStats:
        full = snap.changed is None
        if full:
            ips = await asyncio.to_thread(nodeport_ips, list(self.nodeport_cidrs))  # pyroute2 wants no loop
            self.opts = replace(self.opts, nodeport_ips=ips)
            tables = await self.saved_tables()
            await self.ensure_jumps(tables)
            self._existing = await self.existing_service_chains(tables)
        rendered = render(snap, self.opts, self._existing, self._names)
        if self.script_hook is not None:
            self.script_hook(rendered.text)
        try:
            await execs.run([self.restore, "-w", "--noflush", "--counters"], stdin=rendered.text)
        except execs.ToolError:
            self._existing = None  # unknown now: the next (full) sync reads it again
            raise
        self._existing = set(rendered.active_nat_chains)
        if full:
            self._names.forget_except(self._existing)
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
