"""Everything an agent is told at start-up, in one typed place.

`pyk8s agent` fills it from flags, the all-in-one server and the lab from their
own settings, tests directly. Every path derives from `data_dir`, so several
agents on one machine (the lab) never share a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MIRRORS = {"pyk8s.local": "http://127.0.0.1:5000"}


@dataclass
class AgentConfig:
    kubeconfig: Path
    node_name: str
    node_ip: str
    data_dir: Path
    # None: start and supervise a containerd of our own (like k3s); else an existing CRI socket.
    container_runtime_endpoint: str | None = None
    registry_mirrors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MIRRORS))
    sandbox_image: str = "pyk8s.local/pause:1"
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    cgroup_root: str = "/kubepods"
    bridge_name: str = "pyk8s0"
    cni_bin_dir: Path = Path("/usr/lib/cni")
    max_pods: int = 110
    node_labels: dict[str, str] = field(default_factory=dict)
    register_with_taints: list[dict[str, str]] = field(default_factory=list)
    kubelet_port: int = 10250
    bind_address: str = "0.0.0.0"
    # Heartbeats as upstream: a Lease renewal every 10 s, a status post when it changes.
    node_status_update_frequency: float = 10.0
    node_lease_duration_seconds: int = 40
    node_status_report_frequency: float = 300.0
    # Runtime relist (PLEG) period and the periodic resync of every pod worker.
    relist_period: float = 1.0
    sync_frequency: float = 10.0
    manage_routes: bool = True
    cluster_cidr: str | None = None  # pod traffic to outside it is masqueraded

    @property
    def containerd_dir(self) -> Path:
        return self.data_dir / "containerd"

    @property
    def pods_dir(self) -> Path:
        return self.data_dir / "pods"

    @property
    def pod_logs_dir(self) -> Path:
        return self.data_dir / "pod-logs"

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.data_dir / "cni-ipam"
