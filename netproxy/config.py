"""ProxyConfig: everything `pyk8s proxy` takes, as a value the all-in-one server and the lab can build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODES = ("iptables", "nftables", "ipvs")


@dataclass(frozen=True)
class ProxyConfig:
    node_name: str
    kubeconfig: Path | None = None
    mode: str = "iptables"
    cluster_cidr: str | None = None
    nodeport_addresses: tuple[str, ...] = ()
    masquerade_all: bool = False
    min_sync_period: float = 1.0
    sync_period: float = 30.0
    healthz_bind_address: str = "0.0.0.0:10256"  # "" disables
    metrics_bind_address: str = "127.0.0.1:10249"  # "" disables
    iptables_backend: str = "auto"  # auto | nft | legacy
    ipvs_scheduler: str = "rr"
