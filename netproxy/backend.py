"""The contract between the proxier and a mode: render a snapshot into the kernel, atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from netproxy.tracker import Snapshot


class ModeUnavailable(RuntimeError):
    """The requested proxy mode cannot run on this machine (missing kernel module or tool)."""


@dataclass
class SyncStats:
    rules: dict[str, int] = field(default_factory=dict)
    no_local_internal: int = 0
    no_local_external: int = 0


class Backend(Protocol):
    mode: str

    def check(self) -> None:
        """Raise ModeUnavailable when this mode cannot work here."""

    async def sync(self, snap: Snapshot) -> SyncStats:
        """Apply the snapshot; a full sync when `snap.changed` is None. Raises on failure."""

    async def cleanup(self) -> None:
        """Remove everything this mode created."""
