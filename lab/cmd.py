"""`pyk8s lab up|down|status|exec`: the multi-node lab from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from lab import cluster

DEFAULT_DATA_DIR = Path("/var/lib/pyk8s/lab")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", required=True)
    up = sub.add_parser("up", help="create the lab (removes leftovers of an earlier run first)")
    up.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    up.add_argument("--proxy-mode", choices=("iptables", "nftables", "ipvs"), default="iptables")
    up.add_argument("--subnet", default="10.99.0.0/24", help="the lab bridge's subnet")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the nodes")
    for name, p in (("up", up), ("down", sub.add_parser("down", help="remove everything the lab made")),
                    ("status", sub.add_parser("status", help="what runs, as JSON")),
                    ("exec", sub.add_parser("exec", help="run a command in a node's network namespace"))):
        p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
        p.add_argument("--name", default="lab", help="lab name (1-6 alphanumerics), prefixes every interface")
        if name == "exec":
            p.add_argument("node")
            p.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")


async def run(args: argparse.Namespace) -> int:
    # The lab orchestrates blocking process and netlink work: run it off the loop.
    return await asyncio.to_thread(_run_sync, args)


def _run_sync(args: argparse.Namespace) -> int:
    if args.lab_command == "up":
        state = cluster.up(args.data_dir, args.nodes, name=args.name, proxy_mode=args.proxy_mode,
                           subnet=args.subnet, timeout=args.timeout)
        print(f"lab is up: kubectl --kubeconfig {state.kubeconfig} get nodes -o wide")
        return 0
    if args.lab_command == "down":
        cluster.down(args.data_dir, name=args.name)
        print("lab is down")
        return 0
    if args.lab_command == "status":
        print(json.dumps(cluster.status(args.data_dir), indent=2))
        return 0
    argv = args.argv[1:] if args.argv[:1] == ["--"] else list(args.argv)
    if not argv:
        raise SystemExit("lab exec: a command is required: pyk8s lab exec NODE -- CMD")
    return cluster.exec_in_node(args.data_dir, args.node, argv)
