"""Rules a previous run in another mode left behind, removed when the proxy starts.

A node switched from iptables to nftables mode (or back) would otherwise keep
both rule sets, and the old one would keep answering for services. Only what
the other mode creates is removed: our KUBE-* chains and jump rules (in both
iptables variants), our `table ip kube-proxy`, or IPVS mode's virtual servers,
kube-ipvs0 and `table ip kube-proxy-ipvs`.
"""

from __future__ import annotations

import logging

from netproxy import execs

log = logging.getLogger(__name__)


async def _has_our_iptables_rules(variant: str) -> bool:
    save = f"iptables-{variant}-save"
    if not execs.have(save):
        return False
    result = await execs.run([save, "-t", "nat"], check=False)
    return result.code == 0 and ":KUBE-SERVICES " in result.stdout


async def _has_our_nft_table() -> bool:
    if not execs.have("nft"):
        return False
    return (await execs.run(["nft", "list", "table", "ip", "kube-proxy"], check=False)).code == 0


async def remove_other_modes(mode: str, variant: str | None = None) -> list[str]:
    """Remove the rules of every mode but `mode` (and, in iptables mode, of the other variant)."""
    from netproxy.iptables_backend import IptablesBackend
    from netproxy.iptables_render import RenderOptions
    from netproxy.nftables_backend import NftablesBackend
    from netproxy.nftables_render import NftOptions

    removed = []
    for other in ("nft", "legacy"):
        if (mode != "iptables" or other != variant) and await _has_our_iptables_rules(other):
            await IptablesBackend(RenderOptions(node_name=""), other).cleanup()
            removed.append(f"iptables-{other}")
    if mode != "nftables" and await _has_our_nft_table():
        await NftablesBackend(NftOptions(node_name="")).cleanup()
        removed.append("nftables")
    if mode != "ipvs":
        from netproxy.ipvs import cleanup_leftovers, has_leftovers

        if await has_leftovers():
            await cleanup_leftovers()
            removed.append("ipvs")
    for what in removed:
        log.info("removed the %s rules of an earlier proxy run", what)
    return removed
