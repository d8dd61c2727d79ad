"""A proxy fed with API objects on stdin instead of an API server (tests and benchmarks).

Run inside a node's network namespace:
    nsenter --net=/var/run/netns/NODE python -m netproxy.feed --proxy-mode iptables --node-name node1
Each stdin line is a JSON object {"services": [...], "endpointSlices": [...]} — the
whole desired state; objects missing from it are deleted, as an informer would
report. Every line is followed by one sync with the real backend and one JSON
line on stdout: {"ok": true, "seconds": ..., "full": ..., "rules": {...}}.
Rules stay when the process ends, exactly as with the real proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from netproxy.backend import ModeUnavailable
from netproxy.cmd import add_arguments, config_from_args
from netproxy.leftovers import remove_other_modes
from netproxy.model import Obj
from netproxy.proxier import Proxier, make_backend


def _key(obj: Obj) -> tuple[str, str]:
    md = obj["metadata"]
    return (md.get("namespace") or "default", md["name"])


class Feed:
    def __init__(self, proxier: Proxier) -> None:
        self.proxier = proxier
        self.services: dict[tuple[str, str], Obj] = {}
        self.slices: dict[tuple[str, str], Obj] = {}

    def apply(self, state: dict[str, Any]) -> None:
        p = self.proxier
        services = {_key(o): o for o in state.get("services") or []}
        slices = {_key(o): o for o in state.get("endpointSlices") or []}
        for key in [k for k in self.services if k not in services]:
            p.on_service_delete(self.services.pop(key))
        for key in [k for k in self.slices if k not in slices]:
            p.on_slice_delete(self.slices.pop(key))
        for obj in services.values():
            p.on_service(obj)
        for obj in slices.values():
            p.on_slice(obj)
        self.services, self.slices = services, slices


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netproxy.feed")
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:
        backend = make_backend(config)
    except ModeUnavailable as exc:
        print(orjson.dumps({"ok": False, "error": str(exc)}).decode(), flush=True)
        return 1
    if args.cleanup:
        await backend.cleanup()
        return 0
    await remove_other_modes(backend.mode, getattr(backend, "variant", None))
    proxier = Proxier(config, backend)
    feed = Feed(proxier)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        request = orjson.loads(line)
        feed.apply(request)
        full = bool(request.get("full"))
        start = time.monotonic()
        try:
            await proxier.sync(full=full)
            reply: dict[str, Any] = {"ok": True, "seconds": time.monotonic() - start,
                                     "full": full or proxier.syncs == 1, "rules": proxier.metrics.rules}
        except Exception as exc:
            reply = {"ok": False, "error": str(exc)}
        print(orjson.dumps(reply).decode(), flush=True)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
