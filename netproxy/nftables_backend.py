"""nftables mode: owns `table ip kube-proxy` wholly; one `nft -f -` transaction per sync.

The first sync of a process (and any sync after a failure) replaces the table,
which also removes whatever a previous run left; later syncs apply the
difference to the state the last successful sync installed. Nothing outside
the table is ever touched.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from netproxy import execs
from netproxy.backend import ModeUnavailable, SyncStats
from netproxy.nftables_render import (
    TABLE,
    BuildCache,
    NftOptions,
    NftState,
    SlotAllocator,
    build,
    diff_script,
    full_script,
)
from netproxy.nodeaddrs import nodeport_ips
from netproxy.tracker import Snapshot

log = logging.getLogger(__name__)


class NftablesBackend:
    mode = "nftables"

    def __init__(self, opts: NftOptions, nodeport_cidrs: tuple[str, ...] = ()) -> None:
        self.opts = opts
        self.nodeport_cidrs = nodeport_cidrs
        self._applied: NftState | None = None
        self._dnat_slots = SlotAllocator()
        self._chain_slots = SlotAllocator()
        self._cache = BuildCache()
        self.last_script = ""

    def check(self) -> None:
        if not execs.have("nft"):
            raise ModeUnavailable("nftables mode needs nft (Debian package nftables)")

    async def sync(self, snap: Snapshot) -> SyncStats:
        if snap.changed is None or self._applied is None:
            ips = await asyncio.to_thread(nodeport_ips, list(self.nodeport_cidrs))  # pyroute2 wants no loop
            self.opts = replace(self.opts, nodeport_ips=ips)
        if self._applied is None:
            self._dnat_slots, self._chain_slots, self._cache = SlotAllocator(), SlotAllocator(), BuildCache()
        state = build(snap, self.opts, self._dnat_slots, self._chain_slots, self._cache)
        script = full_script(state) if self._applied is None else diff_script(self._applied, state)
        self.last_script = script
        if script:
            try:
                await execs.run(["nft", "-f", "-"], stdin=script)
            except execs.ToolError:
                self._applied = None  # unknown now: the next sync replaces the whole table
                raise
        self._applied = state
        return SyncStats({"rules": state.rule_count, "elements": state.element_count, "chains": len(state.chains)},
                         state.no_local_internal, state.no_local_external)

    async def cleanup(self) -> None:
        await execs.run(["nft", "delete", "table", "ip", TABLE], check=False)
