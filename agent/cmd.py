"""`pyk8s agent`: flags in, an `AgentConfig` out, the agent run until a signal."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from agent.config import DEFAULT_MIRRORS, AgentConfig
from agent.node import default_node_ip
from controlplane.cmd import preflight
from controlplane.cmd.signals import stop_on_signals


def _mirror(text: str) -> tuple[str, str]:
    host, sep, endpoint = text.partition("=")
    if not sep or not host or not endpoint:
        raise argparse.ArgumentTypeError(f"--registry-mirror {text!r}: expected HOST=URL")
    return host, endpoint


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--node-labels {text!r}: expected KEY=VALUE")
    return key, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-name", default=socket.gethostname().lower())
    parser.add_argument("--node-ip", type=preflight.ip_address, default=None, help="the node's InternalIP (default: the default route's)")
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/pyk8s/agent"))
    parser.add_argument("--container-runtime-endpoint", default=None,
                        help="an existing CRI socket; by default the agent runs its own containerd")
    parser.add_argument("--registry-mirror", type=_mirror, action="append", default=[],
                        help="HOST=URL, e.g. pyk8s.local=http://127.0.0.1:5000 (repeatable)")
    parser.add_argument("--cluster-dns", action="append", default=[])
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--cgroup-root", default="/kubepods")
    parser.add_argument("--bridge-name", default="pyk8s0")
    parser.add_argument("--max-pods", type=preflight.positive_int, default=110)
    parser.add_argument("--node-labels", type=_label, action="append", default=[])
    parser.add_argument("--port", type=preflight.port, default=10250, help="the kubelet HTTPS port")
    parser.add_argument("--address", type=preflight.ip_address, default="0.0.0.0")
    parser.add_argument("--cluster-cidr", type=preflight.cidr, default=None,
                        help="the cluster's pod CIDR: pod traffic leaving it is masqueraded")
    parser.add_argument("--no-routes", action="store_true", help="do not add routes to other nodes' pod CIDRs")


def config_from(args: argparse.Namespace) -> AgentConfig:
    return AgentConfig(
        kubeconfig=args.kubeconfig, node_name=args.node_name, node_ip=args.node_ip or default_node_ip(),
        data_dir=args.data_dir.resolve(), container_runtime_endpoint=args.container_runtime_endpoint,
        registry_mirrors=dict(args.registry_mirror) or dict(DEFAULT_MIRRORS), cluster_dns=args.cluster_dns,
        cluster_domain=args.cluster_domain, cgroup_root=args.cgroup_root, bridge_name=args.bridge_name,
        max_pods=args.max_pods, node_labels=dict(args.node_labels), kubelet_port=args.port,
        bind_address=args.address, manage_routes=not args.no_routes, cluster_cidr=args.cluster_cidr)


async def run(args: argparse.Namespace) -> int:
    from agent.agent import Agent

    preflight.read_kubeconfig("agent", args.kubeconfig)
    if args.container_runtime_endpoint is not None and not args.container_runtime_endpoint.strip():
        raise preflight.fail("agent", "--container-runtime-endpoint is empty; give a CRI socket or leave it out")
    preflight.lock_data_dir("agent", args.data_dir.resolve())
    preflight.check_port_free("agent", args.address, args.port, "--port")
    stop = stop_on_signals()
    await Agent(config_from(args)).run(stop)
    return 0
