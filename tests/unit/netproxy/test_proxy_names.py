"""Chain names: upstream's recipe, computed here independently of netproxy.names."""

from __future__ import annotations

import base64
import hashlib

from netproxy import names
from netproxy.model import Endpoint, ServicePortName


def upstream_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def test_service_chain_is_the_upstream_value() -> None:
    spn = ServicePortName("ns1", "svc1", "p80", "TCP")
    # the value upstream's own proxier tests use for ns1/svc1:p80 over TCP
    assert names.svc_chain(spn) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert names.svc_chain(spn) == "KUBE-SVC-" + upstream_hash("ns1/svc1:p80tcp")
    assert names.ext_chain(spn) == "KUBE-EXT-XPGD46QRK7WJZT7O"
    assert names.svl_chain(spn) == "KUBE-SVL-XPGD46QRK7WJZT7O"


def test_unnamed_port_has_no_colon_and_protocol_matters() -> None:
    udp = ServicePortName("ns2", "svc2", "", "UDP")
    tcp = ServicePortName("ns2", "svc2", "", "TCP")
    assert names.svc_chain(udp) == "KUBE-SVC-" + upstream_hash("ns2/svc2udp")
    assert names.svc_chain(udp) != names.svc_chain(tcp)


def test_endpoint_chain_includes_the_endpoint() -> None:
    spn = ServicePortName("ns1", "svc1", "p80", "TCP")
    chain = names.sep_chain(spn, Endpoint("10.180.0.1", 8080))
    assert chain == "KUBE-SEP-" + upstream_hash("ns1/svc1:p80tcp10.180.0.1:8080")
    assert len(chain) <= 28
    assert names.is_service_chain(chain) and not names.is_service_chain("KUBE-SERVICES")


def test_nft_names_are_readable_and_hashed() -> None:
    spn = ServicePortName("ns1", "svc1", "p80", "TCP")
    digest = base64.b32encode(hashlib.sha256(b"ns1/svc1/tcp/p80").digest()).decode()[:8]
    assert names.nft_service_base(spn) == f"{digest}-ns1/svc1/tcp/p80"
    long = ServicePortName("n" * 63, "s" * 63, "p" * 15, "TCP")
    assert len(names.nft_service_base(long)) == 112 and names.nft_service_base(long).endswith("...")
