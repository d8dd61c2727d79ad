"""`pyk8s scheduler`: the scheduler alone, against any API server."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from controlplane.client import Client
from controlplane.cmd import preflight
from controlplane.cmd.election import run_elected
from controlplane.cmd.gctuning import tune_for_control_plane
from controlplane.cmd.signals import stop_on_signals
from controlplane.scheduler.scheduler import run_scheduler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--leader-elect", action="store_true", help="run only while holding the "
                        "kube-system/kube-scheduler Lease")


async def run(args: argparse.Namespace) -> int:
    tune_for_control_plane()
    preflight.read_kubeconfig("scheduler", args.kubeconfig)
    stop = stop_on_signals()
    async with Client.from_kubeconfig(args.kubeconfig) as client:
        async def work(until: asyncio.Event) -> None:
            await run_scheduler(client, stop=until)

        if args.leader_elect:
            return await run_elected(client, "kube-scheduler", stop, work)
        await work(stop)
    return 0
