"""The `pyk8s` command: one entry point that dispatches to each component.

Each component owns its own argument parser (`add_arguments`) and coroutine
(`run`); this module only wires sub-commands to them, so that a component can
be started alone (`pyk8s scheduler`) or composed (`pyk8s server`).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from pyk8s import redact

# sub-command -> module implementing `add_arguments(parser)` and `async run(args) -> int`
COMMANDS: dict[str, tuple[str, str]] = {
    "server": ("controlplane.cmd.server", "run the control plane (API server, scheduler, controllers)"),
    "apiserver": ("controlplane.cmd.apiserver", "run the API server alone"),
    "scheduler": ("controlplane.cmd.scheduler", "run the scheduler alone"),
    "controller-manager": ("controlplane.cmd.controller_manager", "run the controllers alone"),
    "agent": ("agent.cmd", "run the node agent (kubelet)"),
    "proxy": ("netproxy.cmd", "run the service proxy (kube-proxy)"),
    "lab": ("lab.cmd", "a multi-node cluster of network namespaces on this machine"),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in `argv`: the first word that is not a global option (they take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag value is one line (`pyk8s agent: argument --port: ...`), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that sub-command's module is imported and given its arguments.

    Importing every component costs the agent and the proxy a control plane's
    worth of modules (schemas, controllers, cryptography) that they never use,
    so `main` imports only the component it runs. Without `command`, every
    component is imported (for callers that want the whole parser).
    """
    parser = _Parser(prog="pyk8s", description="Kubernetes in Python")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text)
        if command is not None and name != command:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                sub.set_defaults(_missing=module_name)
                continue
            raise
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(words) or "")
    args = parser.parse_args(words)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    redact.install(level, "%(asctime)s %(levelname).1s %(name)s: %(message)s")
    if getattr(args, "_missing", None):
        parser.error(f"{args.command}: component {args._missing} is not installed")
    try:
        code: int = asyncio.run(args._module.run(args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno not in _ONE_LINE_ERRNOS:
            raise
        print(f"pyk8s {args.command}: {redact.redact(str(exc))}{_ONE_LINE_ERRNOS[exc.errno]}", file=sys.stderr)
        return 1
    return code


# OSErrors that are the environment's, not a bug: said in one line with what to do, never as a traceback.
_ONE_LINE_ERRNOS = {
    errno.EADDRINUSE: "; another process listens there: stop it or choose another port",
    errno.EADDRNOTAVAIL: "; choose an address this host has",
    errno.EACCES: "; run as root or fix the permissions",
    errno.EPERM: "; run as root",
}


if __name__ == "__main__":
    sys.exit(main())
