"""IPVS mode: only where the kernel has ip_vs. This kernel does not, so the mode refuses to start.

Detection follows upstream's order of evidence: /proc/net/ip_vs (module loaded),
/sys/module/ip_vs (built in or loaded), then one `modprobe ip_vs` attempt.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from netproxy.backend import ModeUnavailable


def ipvs_available() -> tuple[bool, str]:
    """(available, why) — `why` says what was looked at when it is not."""
    if Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists():
        return True, "ip_vs is loaded"
    try:
        probe = subprocess.run(["modprobe", "ip_vs"], capture_output=True, text=True, timeout=30)
        detail = probe.stderr.strip() or f"exit code {probe.returncode}"
    except (OSError, subprocess.SubprocessError) as exc:
        detail = str(exc)
    if Path("/proc/net/ip_vs").exists():
        return True, "ip_vs loaded by modprobe"
    return False, (f"the kernel has no IPVS: /proc/net/ip_vs and /sys/module/ip_vs are absent and "
                   f"`modprobe ip_vs` failed ({detail})")


def refuse() -> ModeUnavailable:
    """The error `--proxy-mode ipvs` ends with: why IPVS cannot be used here."""
    ok, why = ipvs_available()
    if not ok:
        return ModeUnavailable(f"proxy mode ipvs is not available: {why}; use --proxy-mode iptables or nftables")
    return ModeUnavailable("proxy mode ipvs: this kernel has ip_vs, but pyk8s programs IPVS nowhere yet; "
                           "use --proxy-mode iptables or nftables")
