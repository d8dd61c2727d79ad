"""Flags, durations, health and metrics of the proxy process (no kernel access)."""

from __future__ import annotations

import argparse
import time

import pytest
from proxy_objects import endpoint_slice, service

from netproxy.cmd import add_arguments, config_from_args, parse_duration
from netproxy.conntrack import stale_commands, udp_view
from netproxy.health import HealthState
from netproxy.metrics import ProxyMetrics
from netproxy.tracker import ChangeTracker


def test_durations_parse_like_go() -> None:
    assert parse_duration("1s") == 1.0
    assert parse_duration("300ms") == pytest.approx(0.3)
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("2") == 2.0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("5x")


def test_flags_have_upstream_names_and_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--hostname-override", "n1", "--nodeport-addresses",
                                                 "10.0.0.0/8, 192.168.0.0/16", "--proxy-mode", "nftables"]))
    assert config.node_name == "n1" and config.mode == "nftables"
    assert config.nodeport_addresses == ("10.0.0.0/8", "192.168.0.0/16")
    assert config.sync_period == 30.0 and config.min_sync_period == 1.0
    assert config.healthz_bind_address == "0.0.0.0:10256" and config.metrics_bind_address == "127.0.0.1:10249"
    # the lab's spelling works too
    lab = config_from_args(parser.parse_args(["--node-name", "n2", "--mode", "iptables"]))
    assert lab.node_name == "n2" and lab.mode == "iptables"


def test_health_is_503_until_synced_and_when_a_queued_change_is_stale() -> None:
    health = HealthState("n1", sync_period=30)
    assert not health.healthy()
    health.updated()
    assert health.healthy()
    health.queued()
    assert health.healthy()
    assert not health.healthy(now=time.time() + 61)
    health.updated()
    assert health.healthy(now=time.time() + 61)
    assert health.body()["nodeName"] == "n1" and health.body()["lastUpdated"].endswith("Z")


def test_metrics_render_prometheus_text() -> None:
    metrics = ProxyMetrics()
    metrics.observe_sync(0.003, full=True)
    metrics.rules = {"nat": 10, "filter": 2}
    text = metrics.render("iptables")
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 1' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.002"} 0' in text
    assert "kubeproxy_sync_proxy_rules_duration_seconds_count 1" in text
    assert 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 10' in text
    assert "kubeproxy_sync_full_proxy_rules_duration_seconds_count 1" in text
    metrics.network_programming.observe(1.5)
    metrics.endpoint_changes = 3
    text = metrics.render("iptables")
    assert 'kubeproxy_network_programming_duration_seconds_bucket{le="2"} 1' in text
    assert 'kubeproxy_network_programming_duration_seconds_bucket{le="1"} 0' in text
    assert "kubeproxy_sync_proxy_rules_endpoint_changes_total 3" in text


def test_udp_conntrack_cleanup_commands() -> None:
    tracker = ChangeTracker("n1")
    ports = [{"port": 5353, "protocol": "UDP"}]
    tracker.update_service(service("a", "dns", "10.96.0.10", [{"port": 53, "protocol": "UDP", "nodePort": 30053}],
                                   type="NodePort"))
    tracker.update_slice(endpoint_slice("a", "dns", ports, [("10.1.0.1", "n1"), ("10.1.0.2", "n2")]))
    before = udp_view(tracker.snapshot())
    tracker.update_slice(endpoint_slice("a", "dns", ports, [("10.1.0.2", "n2")]))
    after = udp_view(tracker.snapshot())
    assert stale_commands(before, after) == [
        ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.1.0.1"],
        ["-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.1.0.1"]]
    tracker.update_slice(endpoint_slice("a", "dns", ports, []))
    empty = udp_view(tracker.snapshot())
    tracker.update_slice(endpoint_slice("a", "dns", ports, [("10.1.0.3", "n1")]))
    back = udp_view(tracker.snapshot())
    assert stale_commands(empty, back) == [["-D", "-p", "udp", "--orig-dst", "10.96.0.10"],
                                           ["-D", "-p", "udp", "--orig-port-dst", "30053"]]


async def test_healthz_and_metrics_over_http() -> None:
    import aiohttp

    from netproxy.health import HTTPServers

    health = HealthState("n1", sync_period=30)
    metrics = ProxyMetrics()
    servers = HTTPServers(health, lambda: metrics.render("nftables"))
    await servers.start("127.0.0.1:0", "127.0.0.1:0")
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{servers.ports['healthz']}"
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 503  # never synced
            health.updated()
            async with http.get(f"{base}/healthz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["nodeName"] == "n1" and "currentTime" in body
            metrics.rules = {"rules": 7}
            async with http.get(f"http://127.0.0.1:{servers.ports['metrics']}/metrics") as resp:
                text = await resp.text()
                assert resp.status == 200 and 'kubeproxy_sync_proxy_rules_nftables_total{kind="rules"} 7' in text
        # a port that is taken costs only that endpoint
        other = HTTPServers(health, lambda: "")
        await other.start(f"127.0.0.1:{servers.ports['healthz']}", "")
        assert "healthz" not in other.ports
        await other.stop()
    finally:
        await servers.stop()
