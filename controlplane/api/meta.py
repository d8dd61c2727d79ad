"""Small helpers on object metadata that every component repeats otherwise."""

from __future__ import annotations

import datetime as dt
import os
import random
import time
import uuid
from typing import Any

# Upstream's utilrand alphabet: no vowels (no words), no 0/1/3 (look like letters).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class UidSource:
    """Random (version 4) UIDs, as upstream makes them, from the OS's CSPRNG drawn 4 KiB at a time.

    `uuid.uuid4()` makes one getrandom() call per UID, and that call releases the GIL: on a busy
    API server the event loop's thread then waits for the store's writer thread to hand the GIL
    back, once per created object.
    """

    def __init__(self, per_draw: int = 256) -> None:
        self._per_draw = per_draw
        self._pool = b""
        self._next = 0

    def new(self) -> str:
        if self._next >= len(self._pool):
            self._pool, self._next = os.urandom(16 * self._per_draw), 0
        raw = self._pool[self._next:self._next + 16]
        self._next += 16
        return str(uuid.UUID(bytes=raw, version=4))


def now_micro() -> str:
    """metav1.MicroTime, as Leases carry it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def random_suffix(length: int = 5) -> str:
    """A generateName suffix. Names are not secrets: upstream draws them from math/rand too."""
    return "".join(random.choices(_NAME_ALPHABET, k=length))


def key_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


def owner_reference(owner: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True,
    }


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_pod_ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
