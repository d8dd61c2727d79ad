"""Switching modes and `pyk8s proxy --cleanup`: only the proxy's own rules go, in the node namespace."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from proxy_lab import REPO, Lab, endpoint_slice, lab, missing_tools, service

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def node_lab() -> Iterator[Lab]:
    for mode in (("iptables", "nft"), ("iptables", "legacy"), ("nftables", None)):
        reason = missing_tools(*mode)
        if reason:
            print(f"SKIPPED: {reason}")
            pytest.skip(reason)
    with lab() as the_lab:
        yield the_lab


def apply_web(the_lab: Lab, mode: str, variant: str | None) -> None:
    proxy = the_lab.start_proxy(mode, variant)
    proxy.apply([service("web", "10.96.0.50", node_port=30050)], [endpoint_slice("web", {"b1": "node1"})])
    proxy.stop()


def answers(the_lab: Lab) -> list[str]:
    return the_lab.request("10.96.0.50", 80, count=3, timeout=1)


def test_switching_modes_removes_the_old_modes_rules(node_lab: Lab) -> None:
    apply_web(node_lab, "iptables", "legacy")
    assert ":KUBE-SERVICES" in node_lab.ruleset("iptables", "legacy")
    apply_web(node_lab, "nftables", None)
    assert ":KUBE-SERVICES" not in node_lab.ruleset("iptables", "legacy")
    assert "table ip kube-proxy" in node_lab.ruleset("nftables", None)
    assert {a.split()[0] for a in answers(node_lab)} == {"b1"}
    apply_web(node_lab, "iptables", "nft")
    assert "table ip kube-proxy" not in node_lab.ruleset("nftables", None)
    assert {a.split()[0] for a in answers(node_lab)} == {"b1"}


@pytest.mark.parametrize("mode", [("iptables", "nft"), ("iptables", "legacy"), ("nftables", None)],
                         ids=["iptables-nft", "iptables-legacy", "nftables"])
def test_cleanup_removes_only_the_proxys_rules(node_lab: Lab, mode: tuple[str, str | None]) -> None:
    kind, variant = mode
    apply_web(node_lab, kind, variant)
    if kind == "iptables":
        node_lab.in_ns(node_lab.node, f"iptables-{variant}", "-t", "nat", "-A", "PREROUTING", "-p", "udp",
                       "--dport", "9999", "-j", "ACCEPT")
    else:
        node_lab.in_ns(node_lab.node, "nft", "add table ip foreign; add chain ip foreign c; "
                       "add rule ip foreign c udp dport 9999 accept")
    assert {a.split()[0] for a in answers(node_lab)} == {"b1"}
    argv = [sys.executable, "-m", "pyk8s.cli", "proxy", "--cleanup", "--proxy-mode", kind,
            "--hostname-override", "node1"] + (["--iptables-backend", variant] if variant else [])
    node_lab.in_ns(node_lab.node, "env", f"PYTHONPATH={REPO}", *argv)
    after = node_lab.ruleset(kind, variant)
    assert "KUBE-" not in after and "kube-proxy" not in after
    assert "9999" in after
    assert answers(node_lab) == ["timeout"] * 3
