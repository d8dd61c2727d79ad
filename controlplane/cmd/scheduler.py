"""`pyk8s scheduler`: the scheduler alone, against any API server."""

from __future__ import annotations

import argparse
from pathlib import Path

from controlplane.client import Client
from controlplane.cmd.signals import stop_on_signals
from controlplane.scheduler.scheduler import run_scheduler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, required=True)


async def run(args: argparse.Namespace) -> int:
    stop = stop_on_signals()
    async with Client.from_kubeconfig(args.kubeconfig) as client:
        await run_scheduler(client, stop=stop)
    return 0
