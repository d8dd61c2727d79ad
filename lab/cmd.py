"""`pyk8s lab up|down|status|exec`: the multi-node lab from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from controlplane.cmd import preflight
from lab import cluster

DEFAULT_DATA_DIR = Path("/var/lib/pyk8s/lab")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", required=True)
    up = sub.add_parser("up", help="create the lab (removes leftovers of an earlier run first)")
    up.add_argument("--nodes", type=preflight.positive_int, default=3, help="number of nodes (default 3)")
    up.add_argument("--proxy-mode", choices=("iptables", "nftables", "ipvs"), default="iptables")
    up.add_argument("--subnet", type=preflight.cidr, default="10.99.0.0/24", help="the lab bridge's subnet")
    up.add_argument("--timeout", type=preflight.positive_float, default=180.0, help="seconds to wait for the nodes")
    for name, p in (("up", up), ("down", sub.add_parser("down", help="remove everything the lab made")),
                    ("status", sub.add_parser("status", help="what runs, as JSON")),
                    ("exec", sub.add_parser("exec", help="run a command in a node's network namespace"))):
        p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
        p.add_argument("--name", type=_lab_name, default="lab",
                       help="lab name (1-6 alphanumerics), prefixes every interface")
        if name == "exec":
            p.add_argument("node")
            p.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")


def _lab_name(text: str) -> str:
    if not text.isalnum() or len(text) > 6:
        raise argparse.ArgumentTypeError(f"{text!r}: a lab name is 1-6 alphanumeric characters")
    return text


async def run(args: argparse.Namespace) -> int:
    # The lab orchestrates blocking process and netlink work: run it off the loop.
    return await asyncio.to_thread(_run_checked, args)


def _run_checked(args: argparse.Namespace) -> int:
    """Conflicts and failures as one line on stderr (exit 1); what already runs is left as it was."""
    try:
        return _run_sync(args)
    except cluster.LabError as exc:
        raise preflight.fail(f"lab {args.lab_command}", str(exc)) from None
    except (RuntimeError, ValueError) as exc:  # the network refusing an interface or subnet, bad addresses
        raise preflight.fail(f"lab {args.lab_command}", str(exc)) from None


def _run_sync(args: argparse.Namespace) -> int:
    if args.lab_command == "up":
        state = cluster.up(args.data_dir, args.nodes, name=args.name, proxy_mode=args.proxy_mode,
                           subnet=args.subnet, timeout=args.timeout)
        print(f"lab is up: kubectl --kubeconfig {state.kubeconfig} get nodes -o wide")
        return 0
    if args.lab_command == "down":
        with cluster.name_lock(args.name):
            cluster.down(args.data_dir, name=args.name)
        print("lab is down")
        return 0
    if args.lab_command == "status":
        print(json.dumps(cluster.status(args.data_dir), indent=2))
        return 0
    argv = args.argv[1:] if args.argv[:1] == ["--"] else list(args.argv)
    if not argv:
        raise preflight.fail("lab exec", "a command is required: pyk8s lab exec NODE -- CMD")
    return cluster.exec_in_node(args.data_dir, args.node, argv)
