"""`pyk8s server`: the control plane in one process, like `k3s server`.

It runs the API server and, talking to it through the same client every other
component uses, the scheduler and the controller manager (node IPAM, namespaces,
service accounts, ReplicaSets, ReplicationControllers, Deployments, EndpointSlices and
Endpoints, garbage collection). The
remaining controllers and the on-host agent and proxy join here as they land; `--disable-agent` already selects the
control-plane-only mode that the lab and the Vagrant control-plane VM use.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from controlplane.cmd import apiserver
from controlplane.cmd.signals import stop_on_signals
from controlplane.controllers.manager import run_controller_manager
from controlplane.scheduler.scheduler import run_scheduler

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    apiserver.add_arguments(parser)
    parser.add_argument("--disable-agent", action="store_true",
                        help="run the control plane only (no agent or proxy on this host)")
    parser.add_argument("--node-cidr-mask-size", type=int, default=24, help="size of each node's podCIDR")


async def run(args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    server = APIServer(apiserver.config_from_args(args))
    await server.start()
    if not args.disable_agent:
        log.warning("the on-host agent and proxy are not part of this build yet; running the control plane only")
    client = Client.from_kubeconfig(server.admin_kubeconfig)
    controllers = [
        run_controller_manager(client, stop=stop, cluster_cidr=args.cluster_cidr,
                               node_mask=args.node_cidr_mask_size),
        run_scheduler(client, stop=stop),
    ]
    print(f"pyk8s control plane on {server.url}; kubeconfig: {server.admin_kubeconfig}", flush=True)
    try:
        await asyncio.gather(*controllers)
    finally:
        await client.close()
        await server.stop()
    return 0
