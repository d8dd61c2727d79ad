"""`pyk8s proxy`: the service proxy of one node, with upstream kube-proxy's flag names."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path

from controlplane.client import Client
from controlplane.cmd import preflight
from controlplane.cmd.signals import stop_on_signals
from netproxy.backend import ModeUnavailable
from netproxy.config import MODES, ProxyConfig
from netproxy.ipvs_render import SCHEDULERS

log = logging.getLogger(__name__)


def parse_duration(text: str) -> float:
    """Go-style durations as upstream takes them: 300ms, 1s, 2m, 1h30m (a bare number is seconds)."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not number:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (missing unit)")
    return total


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig of the API server")
    parser.add_argument("--hostname-override", "--node-name", dest="hostname_override",
                        help="this node's name (default: the host name)")
    parser.add_argument("--proxy-mode", "--mode", dest="proxy_mode", choices=MODES, default="iptables")
    parser.add_argument("--cluster-cidr", help="pod CIDR; traffic to services from outside it is masqueraded")
    parser.add_argument("--nodeport-addresses", default="",
                        help="comma-separated CIDRs whose local addresses accept NodePorts (default: all)")
    parser.add_argument("--masquerade-all", action="store_true", help="SNAT all traffic sent via service IPs")
    parser.add_argument("--min-sync-period", type=parse_duration, default=1.0)
    parser.add_argument("--sync-period", type=parse_duration, default=30.0)
    parser.add_argument("--healthz-bind-address", default="0.0.0.0:10256", help="empty to disable")
    parser.add_argument("--metrics-bind-address", default="127.0.0.1:10249", help="empty to disable")
    parser.add_argument("--iptables-backend", choices=("auto", "nft", "legacy"), default="auto",
                        help="iptables variant (auto: the one that already holds rules, else nft)")
    parser.add_argument("--ipvs-scheduler", default="rr", choices=SCHEDULERS,
                        help="IPVS scheduler of every virtual server in ipvs mode")
    parser.add_argument("--cleanup", action="store_true", help="remove this mode's rules and exit")


def config_from_args(args: argparse.Namespace) -> ProxyConfig:
    return ProxyConfig(
        node_name=args.hostname_override or socket.gethostname(), kubeconfig=args.kubeconfig,
        mode=args.proxy_mode, cluster_cidr=args.cluster_cidr,
        nodeport_addresses=tuple(c.strip() for c in args.nodeport_addresses.split(",") if c.strip()),
        masquerade_all=args.masquerade_all, min_sync_period=args.min_sync_period, sync_period=args.sync_period,
        healthz_bind_address=args.healthz_bind_address, metrics_bind_address=args.metrics_bind_address,
        iptables_backend=args.iptables_backend, ipvs_scheduler=args.ipvs_scheduler or "rr")


async def run(args: argparse.Namespace) -> int:
    from netproxy.proxier import make_backend, run_proxy

    config = config_from_args(args)
    try:
        if args.cleanup:
            if config.mode == "ipvs":  # also where ip_vs is gone: kube-ipvs0 and the nft table remain
                from netproxy.ipvs import cleanup_leftovers

                await cleanup_leftovers()
            else:
                await make_backend(config).cleanup()
            return 0
        client = None
        if config.kubeconfig is not None:
            preflight.read_kubeconfig("proxy", config.kubeconfig)
        if config.kubeconfig is None:
            if not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise preflight.fail("proxy", "--kubeconfig is required outside a cluster")
            client = Client.in_cluster()
        for flag, address in (("--healthz-bind-address", config.healthz_bind_address),
                              ("--metrics-bind-address", config.metrics_bind_address)):
            if address:
                host, _, port_text = address.rpartition(":")
                try:
                    port = preflight.port(port_text)
                except Exception:
                    raise preflight.fail("proxy", f"{flag} {address!r}: expected HOST:PORT") from None
                preflight.check_port_free("proxy", host.strip("[]"), port, flag)
        stop = stop_on_signals()
        try:
            await run_proxy(config, stop, client=client)
        finally:
            if client is not None:
                await client.close()
    except ModeUnavailable as exc:
        log.error("%s", exc)
        print(f"pyk8s proxy: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(run(argparse.ArgumentParser().parse_args())))
