"""`pyk8s controller-manager`: the controllers alone, against any API server."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from controlplane.client import Client
from controlplane.cmd import preflight
from controlplane.cmd.election import run_elected
from controlplane.cmd.gctuning import tune_for_control_plane
from controlplane.cmd.signals import stop_on_signals
from controlplane.controllers.manager import ALL, add_node_lifecycle_arguments, run_controller_manager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--cluster-cidr", default="10.244.0.0/16")
    parser.add_argument("--node-cidr-mask-size", type=int, default=24)
    parser.add_argument("--leader-elect", action="store_true", help="run only while holding the "
                        "kube-system/kube-controller-manager Lease")
    add_node_lifecycle_arguments(parser)
    parser.add_argument("--controllers", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--root-ca-file", type=Path, help="CA bundle published as kube-root-ca.crt in every "
                        "namespace (default: the CA the kubeconfig trusts)")


async def run(args: argparse.Namespace) -> int:
    tune_for_control_plane()
    enabled = tuple(c.strip() for c in args.controllers.split(",") if c.strip())
    unknown = set(enabled) - set(ALL)
    if unknown:
        raise preflight.fail("controller-manager", f"unknown controllers: {', '.join(sorted(unknown))}; known: "
                                                   f"{', '.join(sorted(ALL))}")
    preflight.read_kubeconfig("controller-manager", args.kubeconfig)
    stop = stop_on_signals()
    async with Client.from_kubeconfig(args.kubeconfig) as client:
        root_ca = args.root_ca_file.read_bytes() if args.root_ca_file else client.ca_data
        async def work(until: asyncio.Event) -> None:
            await run_controller_manager(client, stop=until, cluster_cidr=args.cluster_cidr,
                                         node_mask=args.node_cidr_mask_size, enabled=enabled,
                                         node_monitor_grace_period=args.node_monitor_grace_period,
                                         default_toleration_seconds=args.default_not_ready_toleration_seconds,
                                         root_ca=root_ca)

        if args.leader_elect:
            return await run_elected(client, "kube-controller-manager", stop, work)
        await work(stop)
    return 0
