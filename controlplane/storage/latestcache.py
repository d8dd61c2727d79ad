"""The newest value of recently used keys, kept beside the embedded store.

SQLite discards a reader's whole page cache whenever another connection has
committed, so under a steady write load every point read fetches its pages again
(tens of microseconds each, on the event loop: a GET, the namespace check inside
every create). The process that owns the SQLite file is its only writer, so it
knows the newest value of every key it writes: this cache holds those values,
byte-bounded and least-recently-used first out, and a read of the newest revision
is a dictionary lookup. It is only ever touched from the event loop's thread.
"""

from __future__ import annotations

from collections import OrderedDict

from controlplane.storage.interface import KeyValue

# Charged per entry on top of the value: the key, the KeyValue and the dict slot.
_ENTRY_OVERHEAD = 200


def _cost(kv: KeyValue) -> int:
    return len(kv.value) + len(kv.key) + _ENTRY_OVERHEAD


class LatestValues:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, KeyValue] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> KeyValue | None:
        kv = self._entries.get(key)
        if kv is not None:
            self._entries.move_to_end(key)
        return kv

    def put(self, kv: KeyValue) -> None:
        """Remember `kv` as its key's newest live value."""
        self.drop(kv.key)
        cost = _cost(kv)
        if cost > self.max_bytes:
            return
        self._entries[kv.key] = kv
        self._bytes += cost
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= _cost(evicted)

    def drop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= _cost(old)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
