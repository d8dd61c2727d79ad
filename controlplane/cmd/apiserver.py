"""`pyk8s apiserver`: the API server alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from controlplane.apiserver.server import APIServer, APIServerConfig
from controlplane.cmd import preflight
from controlplane.cmd.gctuning import tune_for_control_plane
from controlplane.cmd.signals import stop_on_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, required=True, help="state, PKI and admin.kubeconfig live here")
    parser.add_argument("--bind-address", type=preflight.ip_address, default="127.0.0.1")
    parser.add_argument("--secure-port", type=preflight.port, default=6443)
    parser.add_argument("--service-cidr", type=preflight.cidr, default="10.96.0.0/12")
    parser.add_argument("--service-node-port-range", type=preflight.port_range, default="30000-32767")
    parser.add_argument("--cluster-cidr", type=preflight.cidr, default="10.244.0.0/16")
    parser.add_argument("--storage", default=None, help="sqlite:///path (default: <data-dir>/state.db)")
    parser.add_argument("--advertise-address", type=preflight.ip_address, default=None)
    limits = parser.add_argument_group("connection limits of the HTTPS port")
    limits.add_argument("--tls-handshake-timeout", type=preflight.positive_float, default=10.0,
                        help="seconds (default 10)")
    limits.add_argument("--request-header-timeout", type=preflight.positive_float, default=30.0,
                        help="seconds for request headers and for an idle keep-alive connection (default 30)")
    limits.add_argument("--request-body-timeout", type=preflight.positive_float, default=60.0,
                        help="seconds (default 60)")
    limits.add_argument("--max-pending-connections", type=preflight.positive_int, default=512,
                        help="connections accepted without complete request headers yet (default 512)")
    limits.add_argument("--max-header-size", type=preflight.positive_int, default=8190,
                        help="bytes of the request line, a header line or a header field (default 8190)")


def preflight_checks(args: argparse.Namespace) -> None:
    """Refuse, in one line, a data dir another server uses or a port something else listens on."""
    command = getattr(args, "command", None) or "apiserver"
    storage = str(args.storage or "")
    if "://" in storage and not storage.startswith(("sqlite://", "etcd://")):
        raise preflight.fail(command, f"--storage {storage!r}: expected sqlite:///path or etcd://HOST:PORT,...")
    preflight.lock_data_dir(command, args.data_dir.resolve())
    preflight.check_port_free(command, args.bind_address, args.secure_port, "--secure-port")


def config_from_args(args: argparse.Namespace) -> APIServerConfig:
    return APIServerConfig(data_dir=args.data_dir.resolve(), bind_address=args.bind_address,
                           secure_port=args.secure_port, service_cidr=args.service_cidr,
                           service_node_port_range=args.service_node_port_range, cluster_cidr=args.cluster_cidr,
                           storage_url=args.storage, advertise_address=args.advertise_address,
                           tls_handshake_timeout=args.tls_handshake_timeout,
                           request_header_timeout=args.request_header_timeout,
                           request_body_timeout=args.request_body_timeout,
                           max_pending_connections=args.max_pending_connections,
                           max_header_size=args.max_header_size)


async def run(args: argparse.Namespace) -> int:
    tune_for_control_plane()
    preflight_checks(args)
    stop = stop_on_signals()
    server = APIServer(config_from_args(args))
    await server.start()
    print(f"pyk8s API server on {server.url}; kubeconfig: {server.admin_kubeconfig}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0
