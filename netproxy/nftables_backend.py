"""nftables mode: owns `table ip kube-proxy` wholly; one `nft -f -` transaction per sync.

The first sync of a process (and any sync after a failure) replaces the table,
which also removes whatever a previous run left; later syncs apply the
difference to the state the last successful sync installed (`NftTable`, which
keeps per service port only what it was rendered from). Nothing outside the
table is ever touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from netproxy import execs
from netproxy.backend import ModeUnavailable, SyncStats
from netproxy.nftables_render import TABLE, NftOptions, NftTable
from netproxy.nodeaddrs import nodeport_ips
from netproxy.tracker import Snapshot

log = logging.getLogger(__name__)


class NftablesBackend:
    mode = "nftables"

    def __init__(self, opts: NftOptions, nodeport_cidrs: tuple[str, ...] = ()) -> None:
        self.opts = opts
        self.nodeport_cidrs = nodeport_cidrs
        self.table = NftTable()  # what the kernel has, as far as this process knows
        self.script_hook: Callable[[str], None] | None = None  # sees each transaction (benchmarks, debugging)

    def check(self) -> None:
        if not execs.have("nft"):
            raise ModeUnavailable("nftables mode needs nft (Debian package nftables)")

    async def sync(self, snap: Snapshot) -> SyncStats:
        if snap.changed is None or not self.table.installed:
            ips = await asyncio.to_thread(nodeport_ips, list(self.nodeport_cidrs))  # pyroute2 wants no loop
            self.opts = replace(self.opts, nodeport_ips=ips)
        script = self.table.sync_script(snap, self.opts)
        if self.script_hook is not None:
            self.script_hook(script)
        if script:
            try:
                await execs.run(["nft", "-f", "-"], stdin=script)
            except execs.ToolError:
                self.table.reset()  # unknown now: the next sync replaces the whole table
                raise
        rules, no_local_internal, no_local_external = self.table.stats()
        return SyncStats(rules, no_local_internal, no_local_external)

    async def cleanup(self) -> None:
        await execs.run(["nft", "delete", "table", "ip", TABLE], check=False)
