"""Finding and removing mounts under a folder: pod volumes, containerd's rootfs mounts.

Used when the agent tears a pod down and when the lab or a test removes a node's
whole data directory; lazy unmounts, deepest first, so nothing stays busy.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def mounts_below(root: Path) -> list[str]:
    """Mount points strictly below `root`, deepest first."""
    prefix = str(root).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point.startswith(prefix):
                found.append(mount_point)
    return sorted(found, key=len, reverse=True)


def unmount_below(root: Path) -> None:
    for mount_point in mounts_below(root):
        subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)
