"""IPVS mode: this kernel has no ip_vs, so `pyk8s proxy --proxy-mode ipvs` must refuse, clearly, with exit 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netproxy.ipvs import ipvs_available


def test_ipvs_mode_refuses_without_the_kernel_module(tmp_path) -> None:
    available, why = ipvs_available()
    if available:
        print(f"SKIPPED: this kernel has IPVS ({why}); the refusal cannot be observed here")
        pytest.skip(f"this kernel has IPVS ({why})")
    print(f"IPVS absent here: {why}")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = subprocess.run([sys.executable, "-m", "pyk8s.cli", "proxy", "--kubeconfig", str(kubeconfig),
                             "--hostname-override", "n1", "--proxy-mode", "ipvs", "--healthz-bind-address", "",
                             "--metrics-bind-address", ""], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    assert "ipvs is not available" in result.stdout + result.stderr
    assert "ip_vs" in result.stdout + result.stderr

