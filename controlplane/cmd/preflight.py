"""Checks every `pyk8s` command makes before it changes anything, each failing with one clear line.

A second server on a data dir another one is using, a port something else
listens on, a kubeconfig that is missing or not YAML: each is refused with
`SystemExit("pyk8s <command>: <what is in the way>; <what to do>")` — one line
on stderr, exit status 1, no traceback, and nothing that already runs touched.
Argument types here turn bad flag values into argparse's own one-line errors.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

import psutil

_held_locks: list[int] = []  # data-dir locks live as long as the process


def fail(command: str, message: str) -> SystemExit:
    """The exception a command raises to stop with one line (`raise fail(...)`)."""
    return SystemExit(f"pyk8s {command}: {message}")


# -- argument types ------------------------------------------------------------------


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0")
    return value


def ip_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a network in CIDR notation ({exc})") from None


def port_range(text: str) -> str:
    low, sep, high = text.partition("-")
    try:
        ok = bool(sep) and 0 < int(low) <= int(high) <= 65535
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port range like 30000-32767")
    return text


# -- conflicts -----------------------------------------------------------------------


def listener_of(port_number: int) -> str:
    """Who listens on TCP `port_number` ("pid 123 (python3)"), or "another process" if that is unknown."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port_number and conn.pid:
                with contextlib.suppress(psutil.Error):
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                return f"pid {conn.pid}"
    return "another process"


def check_port_free(command: str, host: str, port_number: int, flag: str) -> None:
    """Refuse to start when `host:port` cannot be bound (in use, or an address this host does not have)."""
    if port_number == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host or "0.0.0.0", port_number))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise fail(command, f"port {port_number} on {host or '0.0.0.0'} is in use by "
                                    f"{listener_of(port_number)}; stop it or choose another {flag}") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise fail(command, f"{host} is not an address of this host; choose another bind address") from None
            raise fail(command, f"cannot listen on {host}:{port_number}: {exc.strerror}") from None


def lock_data_dir(command: str, data_dir: Path) -> None:
    """Hold an exclusive lock on `data_dir` for the life of this process; refuse if another holds it."""
    from controlplane.privatefiles import create_private, private_dir

    try:
        private_dir(data_dir)
        lock = data_dir / ".lock"
        create_private(lock)
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise fail(command, f"cannot use data dir {data_dir}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise fail(command, f"data dir {data_dir} is in use by a running pyk8s ({holder}); stop it or "
                            "choose another --data-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    _held_locks.append(fd)


def release_locks() -> None:
    """Drop every lock this process holds (for commands that finish, and tests)."""
    while _held_locks:
        os.close(_held_locks.pop())


def read_kubeconfig(command: str, path: Path | None) -> dict[str, Any]:
    """The kubeconfig's content, or one line saying why it cannot be used (never quoting its content)."""
    import yaml

    if path is None:
        raise fail(command, "--kubeconfig is required")
    try:
        text = path.read_text()
    except OSError as exc:
        raise fail(command, f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise fail(command, f"kubeconfig {path} is not valid YAML{where}") from None
    if not isinstance(config, dict) or not config.get("clusters") or not config.get("contexts"):
        raise fail(command, f"kubeconfig {path} names no cluster and context; pass the API server's kubeconfig")
    current = config.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in config["contexts"] if isinstance(c, dict)}
    clusters = {c.get("name") for c in config["clusters"] if isinstance(c, dict)}
    if current not in contexts:
        raise fail(command, f"kubeconfig {path}: current-context {current!r} is not among its contexts")
    if contexts[current].get("cluster") not in clusters:
        raise fail(command, f"kubeconfig {path}: context {current!r} names a cluster it does not define")
    return config
