"""The real proxy (`pyk8s proxy` in a node namespace) against the real API server.

Services and EndpointSlices are created through the API; traffic from the
client namespace shows the rules. The API server listens on the host's
loopback; the proxy reaches it through a relay into its namespace, which the
test cuts to play an API server outage: the rules must stay, and the proxy
must catch up once the API is back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from proxy_lab import BACKENDS, REPO, Lab, Relay, lab, missing_tools

from controlplane.api.resources import ENDPOINTSLICES, SERVICES
from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from tests.helpers import eventually

pytestmark = [pytest.mark.root, pytest.mark.slow]
MODES = [("iptables", "nft"), ("nftables", None)]


@pytest.fixture
def node_lab() -> Iterator[Lab]:
    with lab() as the_lab:
        yield the_lab


@pytest.fixture
async def relay(node_lab: Lab, api_server: APIServer) -> AsyncIterator[Relay]:
    the_relay = Relay(node_lab.node, api_server.port)
    await the_relay.start()
    try:
        yield the_relay
    finally:
        await the_relay.stop()


def slice_body(backends: list[str]) -> dict:
    return {"metadata": {"name": "web-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [BACKENDS[b]], "nodeName": "node1", "conditions": {"ready": True}}
                          for b in backends]}


def start_logged(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "w") as log_file:
        return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})


def http_get(the_lab: Lab, url: str) -> tuple[int, str]:
    script = ("import sys, urllib.request, urllib.error\n"
              "try:\n    r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())\n"
              "except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\n")
    out = the_lab.in_ns(the_lab.node, sys.executable, "-c", script, url).stdout
    status, _, body = out.partition("\n")
    return int(status), body


@pytest.mark.parametrize("mode", MODES, ids=["iptables-nft", "nftables"])
async def test_proxy_follows_the_api_and_survives_an_outage(
        node_lab: Lab, relay: Relay, kubeconfig: Path, mode: tuple[str, str | None]) -> None:
    reason = missing_tools(*mode)
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    kind, variant = mode
    async with Client.from_kubeconfig(kubeconfig) as client:
        await client.create(SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                       "spec": {"clusterIP": "10.96.0.40", "ports": [
                                           {"name": "http", "port": 80, "targetPort": 8080}]}})
        await client.create(ENDPOINTSLICES, slice_body(["b1", "b2"]))
        argv = ["nsenter", f"--net=/var/run/netns/{node_lab.node}", "--", sys.executable, "-m", "pyk8s.cli", "-v",
                "proxy", "--kubeconfig", str(kubeconfig), "--hostname-override", "node1", "--proxy-mode", kind,
                "--cluster-cidr", "10.244.0.0/16", "--min-sync-period", "100ms",
                "--healthz-bind-address", "127.0.0.1:10256", "--metrics-bind-address", "127.0.0.1:10249"]
        if variant:
            argv += ["--iptables-backend", variant]
        log = kubeconfig.parent / "proxy.log"
        proc = start_logged(argv, log)
        try:
            def served_by(expected: set[str]) -> bool:
                answers = node_lab.request("10.96.0.40", 80, count=20, timeout=1)
                return {a.split()[0] for a in answers} == expected

            await eventually(lambda: served_by({"b1", "b2"}), timeout=60, interval=0.5)
            status, body = http_get(node_lab, "http://127.0.0.1:10256/healthz")
            assert status == 200 and {"lastUpdated", "currentTime"} <= set(json.loads(body))
            _, metrics = http_get(node_lab, "http://127.0.0.1:10249/metrics")
            assert "kubeproxy_sync_proxy_rules_duration_seconds_count" in metrics
            assert "kubeproxy_sync_proxy_rules_last_timestamp_seconds" in metrics

            # the API goes away: rules stay
            await relay.stop()
            current = await client.get(ENDPOINTSLICES, "web-1", "default")
            await client.update(ENDPOINTSLICES, {**slice_body(["b2"]), "metadata": current["metadata"]})
            assert served_by({"b1", "b2"}), "rules changed or vanished while the API was unreachable"
            # it comes back: the proxy catches up with what changed meanwhile
            await relay.start()
            await eventually(lambda: served_by({"b2"}), timeout=90, interval=0.5)

            await client.delete(SERVICES, "web", "default")
            await eventually(lambda: node_lab.request("10.96.0.40", 80, count=1, timeout=1) == ["timeout"],
                             timeout=60, interval=0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code: int | None = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = None
            print(log.read_text()[-3000:])
        assert code == 0
        if kind == "iptables":
            assert "KUBE-SERVICES" in node_lab.ruleset(kind, variant)  # stopping leaves the rules
        else:
            assert "table ip kube-proxy" in node_lab.ruleset(kind, variant)
