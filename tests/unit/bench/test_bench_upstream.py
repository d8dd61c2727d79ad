"""The pure helpers of bench/upstream.py (the benches' `--against upstream` runs): command lines,
the build script's output, Prometheus text, ratios. No root, no binaries, no network."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import upstream


def test_parse_binaries() -> None:
    out = "kube-apiserver /t/v1/kube-apiserver\nkube-proxy /t/v1/kube-proxy\nnoise\n"
    assert upstream.parse_binaries(out) == {"kube-apiserver": Path("/t/v1/kube-apiserver"),
                                            "kube-proxy": Path("/t/v1/kube-proxy")}


def test_parse_metric_with_and_without_labels() -> None:
    text = ("# HELP x y\n# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n"
            'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.5"} 3\n'
            "kubeproxy_sync_proxy_rules_duration_seconds_sum 12.5\n"
            "kubeproxy_sync_proxy_rules_duration_seconds_count 4\n")
    assert upstream.parse_metric(text, "kubeproxy_sync_proxy_rules_duration_seconds_sum") == 12.5
    assert upstream.parse_metric(text, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", {"le": "0.5"}) == 3
    assert upstream.parse_metric(text, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", {"le": "1"}) is None
    assert upstream.parse_metric(text, "absent") is None


def test_ratio() -> None:
    assert upstream.ratio(3.0, 2.0) == 1.5
    assert upstream.ratio(1.0, 0.0) is None
    assert upstream.ratio(None, 2.0) is None


def test_kube_apiserver_argv_is_loopback_only(tmp_path: Path) -> None:
    pki = upstream.PKI(tmp_path / "ca", tmp_path / "c", tmp_path / "k", tmp_path / "sa", tmp_path / "sp")
    argv = upstream.kube_apiserver_argv(Path("/b/kube-apiserver"), pki, tmp_path / "t.csv", 2379, 6443)
    assert argv[0] == "/b/kube-apiserver"
    assert "--bind-address=127.0.0.1" in argv and "--secure-port=6443" in argv
    assert "--etcd-servers=http://127.0.0.1:2379" in argv
    assert "--authorization-mode=AlwaysAllow" in argv


def test_etcd_argv_is_loopback_only(tmp_path: Path) -> None:
    argv = upstream.etcd_argv(tmp_path, 1111, 2222)
    urls = [a for a in argv if a.startswith("http")]
    assert urls and all(u.startswith("http://127.0.0.1:") for u in urls)
    assert "yardstick=http://127.0.0.1:2222" in argv


def test_make_pki(tmp_path: Path) -> None:
    from cryptography import x509

    pki = upstream.make_pki(tmp_path)
    cert = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
