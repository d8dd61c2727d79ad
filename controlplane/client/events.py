"""Record core/v1 Events about objects, as `kubectl describe` shows them.

Best effort, like upstream's recorder: a failure to record an event is logged
and never fails the caller's work. A repeat of the same reason and message on
the same object bumps `count` and `lastTimestamp` instead of adding an event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.client import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._recent: dict[tuple[str, str, str], Obj] = {}  # (uid, reason, message) -> event

    async def emit(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        namespace = md.get("namespace") or "default"
        now = meta.now_rfc3339()
        key = (str(md.get("uid")), reason, message)
        try:
            previous = self._recent.get(key)
            if previous is not None:
                previous["count"] = int(previous.get("count", 1)) + 1
                previous["lastTimestamp"] = now
                self._recent[key] = await self.client.update(resources.EVENTS, previous)
                return
            source: Obj = {"component": self.component}
            if self.host:
                source["host"] = self.host
            event = {
                "metadata": {"name": f"{md.get('name')}.{time.time_ns():x}", "namespace": namespace},  # upstream's
                "involvedObject": {"kind": obj.get("kind"), "namespace": md.get("namespace"), "name": md.get("name"),
                                   "uid": md.get("uid"), "apiVersion": obj.get("apiVersion"),
                                   "resourceVersion": md.get("resourceVersion")},
                "reason": reason, "message": message, "type": kind, "count": 1, "firstTimestamp": now,
                "lastTimestamp": now, "source": source, "reportingComponent": self.component,
                "reportingInstance": self.host or self.component,
            }
            self._recent[key] = await self.client.create(resources.EVENTS, event)
            if len(self._recent) > 4096:
                self._recent.pop(next(iter(self._recent)))
        except (StatusError, OSError) as exc:
            self._recent.pop(key, None)
            log.debug("event %s on %s not recorded: %s", reason, md.get("name"), exc)
