"""The pod network of this node: a CNI config for its podCIDR, and routes to the other nodes.

containerd calls the CNI plugins (bridge, host-local, portmap, loopback from
Debian's containernetworking-plugins) for every sandbox; the agent's part is the
config that names the node's `spec.podCIDR` (assigned by the node IPAM
controller), and, like flannel's host-gw backend, one route per other node:
its podCIDR via its InternalIP. Routes are tagged with their own protocol
number, so the agent only ever removes routes it added. Routes are read and
written with iproute2's `ip` (JSON output), as the masquerade rule is with
iptables: a netlink library would cost the agent ~8 MB of resident modules
for a handful of calls a minute.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
Obj = dict[str, Any]
CONFLIST_NAME = "10-pyk8s.conflist"
ROUTE_PROTOCOL = 199  # marks routes of ours (an unassigned number in /etc/iproute2/rt_protos)
MASQ_CHAIN = "PYK8S-POSTROUTING"


def conflist(pod_cidr: str, bridge: str, ipam_dir: Path) -> Obj:
    gateway = str(ipaddress.ip_network(pod_cidr).network_address + 1)
    return {
        "cniVersion": "0.4.0",
        "name": "pyk8s",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr, "gateway": gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(ipam_dir)}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


class PodNetwork:
    def __init__(self, cni_conf_dir: Path, bridge: str, ipam_dir: Path, node_name: str,
                 manage_routes: bool = True) -> None:
        self.cni_conf_dir = cni_conf_dir
        self.bridge = bridge
        self.ipam_dir = ipam_dir
        self.node_name = node_name
        self.manage_routes = manage_routes
        self.pod_cidr: str | None = None

    @property
    def conf_path(self) -> Path:
        return self.cni_conf_dir / CONFLIST_NAME

    def ready(self) -> tuple[bool, str]:
        if self.pod_cidr is None or not self.conf_path.exists():
            return False, "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
        return True, ""

    def configure(self, pod_cidr: str) -> bool:
        """Write the CNI config for the node's podCIDR; True if it changed."""
        text = json.dumps(conflist(pod_cidr, self.bridge, self.ipam_dir), indent=2) + "\n"
        self.pod_cidr = pod_cidr
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        if self.conf_path.exists() and self.conf_path.read_text() == text:
            return False
        tmp = self.conf_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.conf_path)
        log.info("pod network: %s on bridge %s", pod_cidr, self.bridge)
        return True

    def ensure_masquerade(self, cluster_cidr: str | None) -> None:
        """Pod traffic leaving the cluster network is masqueraded; pod-to-pod traffic keeps its source.

        One chain of ours, replaced atomically with iptables-restore; the jump
        into it is added once. Nothing else in the nat table is touched.
        """
        if self.pod_cidr is None:
            return
        rules = [f":{MASQ_CHAIN} - [0:0]"]
        if cluster_cidr:
            rules.append(f"-A {MASQ_CHAIN} -s {self.pod_cidr} -d {cluster_cidr} -j RETURN")
        rules.append(f"-A {MASQ_CHAIN} -s {self.pod_cidr} ! -d {self.pod_cidr} -j MASQUERADE --random-fully")
        text = "*nat\n" + "\n".join(rules) + "\nCOMMIT\n"
        subprocess.run(["iptables-restore", "--noflush", "-w", "5"], input=text, text=True, check=True,
                       capture_output=True)
        jump = ["POSTROUTING", "-m", "comment", "--comment", "pyk8s pod masquerade", "-j", MASQ_CHAIN]
        if subprocess.run(["iptables", "-w", "5", "-t", "nat", "-C", *jump], capture_output=True).returncode != 0:
            subprocess.run(["iptables", "-w", "5", "-t", "nat", "-A", *jump], check=True, capture_output=True)

    def sync_routes(self, nodes: list[Obj]) -> None:
        """One route per other node's podCIDR via its InternalIP; stale routes of ours removed."""
        if not self.manage_routes:
            return
        wanted: dict[str, str] = {}
        for node in nodes:
            if node["metadata"]["name"] == self.node_name:
                continue
            cidr = (node.get("spec") or {}).get("podCIDR")
            address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                            if a.get("type") == "InternalIP"), None)
            if cidr and address:
                wanted[cidr] = address
        present: dict[str, str] = {}
        for route in _ip_json("route", "show", "proto", str(ROUTE_PROTOCOL)):
            dst = route.get("dst", "")
            present[str(ipaddress.ip_network("0.0.0.0/0" if dst == "default" else dst))] = route.get("gateway", "")
        for dst, gateway in present.items():
            if wanted.get(dst) != gateway:
                _ip("route", "del", dst, "proto", str(ROUTE_PROTOCOL))
        for dst, gateway in wanted.items():
            if present.get(dst) != gateway:
                try:
                    _ip("route", "replace", dst, "via", gateway, "proto", str(ROUTE_PROTOCOL))
                except Exception as exc:  # not on our link: the node is elsewhere
                    log.warning("route %s via %s: %s", dst, gateway, exc)


class IPCommandError(RuntimeError):
    """`ip` failed; the message is its own (e.g. "Error: Nexthop has invalid gateway.")."""


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise IPCommandError(f"ip {' '.join(args)}: {result.stderr.strip() or f'exit code {result.returncode}'}")
    return result.stdout


def _ip_json(*args: str) -> list[Obj]:
    """`ip -4 -j ARGS` parsed: IPv4 only, as the routes of ours are."""
    out = _ip("-4", "-j", *args).strip()
    return list(json.loads(out)) if out else []
