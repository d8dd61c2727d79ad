"""`pyk8s server`: the control plane in one process, and by default a node too, like `k3s server`.

It runs the API server and, talking to it through the same client every other
component uses, the scheduler and the controller manager. Unless
`--disable-agent` is given (the lab and the Vagrant control-plane VM use that
mode), this host also becomes a node: the agent (with its own containerd) and
the proxy run in the same process, configured from the server's own flags.
The command lines are composed, never imported the other way: the control plane
package itself knows nothing of the agent or the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import socket
from typing import Any

from controlplane.apiserver.server import APIServer
from controlplane.cmd import apiserver, preflight
from controlplane.cmd.gctuning import tune_for_control_plane
from controlplane.cmd.signals import stop_on_signals
from controlplane.controllers.manager import add_node_lifecycle_arguments, run_controller_manager
from controlplane.scheduler.scheduler import run_scheduler

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    apiserver.add_arguments(parser)
    parser.add_argument("--disable-agent", action="store_true",
                        help="run the control plane only (no agent or proxy on this host)")
    parser.add_argument("--node-cidr-mask-size", type=preflight.positive_int, default=24, help="size of each node's podCIDR")
    parser.add_argument("--node-name", default=socket.gethostname().lower(), help="this host's node name")
    parser.add_argument("--node-ip", type=preflight.ip_address, default=None, help="this host's InternalIP (default: the default route's)")
    parser.add_argument("--proxy-mode", choices=("iptables", "nftables", "ipvs"), default="iptables")
    add_node_lifecycle_arguments(parser)


def _node_components(args: argparse.Namespace, server: APIServer, stop: asyncio.Event) -> list[Any]:
    """This host as a node: the agent and the proxy, started by name so the control plane stays independent."""
    agent_module = importlib.import_module("agent.agent")
    config_module = importlib.import_module("agent.config")
    node_module = importlib.import_module("agent.node")
    proxy_module = importlib.import_module("netproxy.proxier")
    proxy_config = importlib.import_module("netproxy.config")
    node_ip = args.node_ip or node_module.default_node_ip()
    agent = agent_module.Agent(config_module.AgentConfig(
        kubeconfig=server.admin_kubeconfig, node_name=args.node_name, node_ip=node_ip,
        data_dir=args.data_dir.resolve() / "agent", cluster_cidr=args.cluster_cidr))
    proxy = proxy_config.ProxyConfig(node_name=args.node_name, kubeconfig=server.admin_kubeconfig,
                                     mode=args.proxy_mode, cluster_cidr=args.cluster_cidr)
    return [agent.run(stop), proxy_module.run_proxy(proxy, stop)]


async def run(args: argparse.Namespace) -> int:
    tune_for_control_plane()
    apiserver.preflight_checks(args)
    if not args.disable_agent:
        agent_dir = args.data_dir.resolve() / "agent"
        preflight.lock_data_dir(args.command, agent_dir)
    stop = stop_on_signals()
    server = APIServer(apiserver.config_from_args(args))
    await server.start()
    client = server.loopback_client()
    assert server.pki is not None  # made by start()
    controllers = [
        run_controller_manager(client, stop=stop, cluster_cidr=args.cluster_cidr,
                               node_mask=args.node_cidr_mask_size,
                               node_monitor_grace_period=args.node_monitor_grace_period,
                               default_toleration_seconds=args.default_not_ready_toleration_seconds,
                               root_ca=server.pki.ca_cert.read_bytes()),
        run_scheduler(client, stop=stop),
    ]
    if not args.disable_agent:
        controllers += _node_components(args, server, stop)
    print(f"pyk8s control plane on {server.url}; kubeconfig: {server.admin_kubeconfig}", flush=True)
    try:
        await asyncio.gather(*controllers)
    finally:
        await client.close()
        await server.stop()
    return 0
