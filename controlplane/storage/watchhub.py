"""In-memory fan-out of committed changes to watchers.

A ring of the most recent events serves a watch that starts inside the window
without touching the database, and every live change is pushed once to each
matching subscriber's bounded queue. A watcher that cannot keep up is ended
(as if its revision had been compacted) instead of letting its queue grow
without bound; its client then relists, as a Kubernetes client does on 410.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from controlplane.storage.interface import CompactedError, WatchEvent

_CLOSED = object()


class Subscription:
    def __init__(self, prefix: str, start_rev: int, capacity: int) -> None:
        self.prefix = prefix
        self.start_rev = start_rev  # events after this arrive through the queue
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=capacity)
        self.overflowed = False

    def push(self, item: object) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    async def events(self, *, after: int, hub: WatchHub) -> AsyncIterator[WatchEvent]:
        """Events after `after`: first those the ring held at subscription, then live ones."""
        last = after
        for event in hub.backlog(self.prefix, after, self.start_rev):
            last = event.revision
            yield event
        while True:
            if self.overflowed and self.queue.empty():
                raise CompactedError(last, last)
            item = await self.queue.get()
            if item is _CLOSED:
                return
            assert isinstance(item, WatchEvent)
            if item.revision > last:
                last = item.revision
                yield item


class WatchHub:
    def __init__(self, window: int = 10000, subscriber_capacity: int = 10000) -> None:
        self._ring: deque[WatchEvent] = deque(maxlen=window)
        self._subs: set[Subscription] = set()
        self._capacity = subscriber_capacity
        self._base_rev = 0  # revision before the oldest event the ring could hold
        self._last_rev = 0

    def reset(self, revision: int) -> None:
        self._ring.clear()
        self._base_rev = self._last_rev = revision

    def covers(self, after: int) -> bool:
        """True when every event after `after` is still in the ring (or yet to come)."""
        if len(self._ring) < (self._ring.maxlen or 0):
            return after >= self._base_rev  # nothing has been pushed out since reset
        return after >= self._ring[0].revision - 1

    def backlog(self, prefix: str, after: int, upto: int) -> list[WatchEvent]:
        return [e for e in self._ring if after < e.revision <= upto and e.kv.key.startswith(prefix)]

    def subscribe(self, prefix: str) -> Subscription:
        sub = Subscription(prefix, self._last_rev, self._capacity)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, event: WatchEvent) -> None:
        self._ring.append(event)
        self._last_rev = max(self._last_rev, event.revision)
        key = event.kv.key
        for sub in self._subs:
            if key.startswith(sub.prefix):
                sub.push(event)

    def close(self) -> None:
        for sub in list(self._subs):
            # Closing must get through even to a full queue.
            while True:
                try:
                    sub.queue.put_nowait(_CLOSED)
                    break
                except asyncio.QueueFull:
                    sub.queue.get_nowait()
        self._subs.clear()
