"""Container logs as the runtime writes them (the CRI log format), read back for users.

containerd writes one line per chunk: `<RFC3339Nano time> <stream> <P|F> <text>`,
where P marks a partial line continued by the next entry. `kubectl logs` wants
the text back, optionally with times, the last N lines, lines since a time, a
byte limit, and `-f` to keep following the file while the container runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LogEntry:
    time: str
    stream: str
    text: bytes  # a whole line, with its newline when the runtime saw one


def parse_time(value: str) -> dt.datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds)."""
    value = value.replace("Z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        value = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return dt.datetime.fromisoformat(value)


class _Assembler:
    """Joins partial (P) entries into whole lines."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, bytearray]] = {}

    def feed(self, raw: bytes) -> LogEntry | None:
        parts = raw.rstrip(b"\n").split(b" ", 3)
        if len(parts) < 3:
            return None
        time_text, stream, tag = parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), parts[2]
        content = parts[3] if len(parts) > 3 else b""
        first_time, buffer = self._pending.pop(stream, (time_text, bytearray()))
        buffer += content
        if tag == b"P":
            self._pending[stream] = (first_time, buffer)
            return None
        return LogEntry(first_time, stream, bytes(buffer) + b"\n")


def _render(entry: LogEntry, timestamps: bool) -> bytes:
    return (entry.time.encode() + b" " + entry.text) if timestamps else entry.text


def read_entries(path: Path) -> list[LogEntry]:
    assembler = _Assembler()
    entries = []
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                entry = assembler.feed(raw)
                if entry is not None:
                    entries.append(entry)
    except FileNotFoundError:
        pass
    return entries


def select(entries: list[LogEntry], *, tail_lines: int | None = None, since: dt.datetime | None = None
           ) -> list[LogEntry]:
    if since is not None:
        entries = [e for e in entries if parse_time(e.time) >= since]
    if tail_lines is not None:
        entries = list(deque(entries, maxlen=max(tail_lines, 0)))
    return entries


def tail_text(path: Path, lines: int, limit: int) -> str:
    """The last lines of a container's output, for `FallbackToLogsOnError`."""
    data = b"".join(e.text for e in select(read_entries(path), tail_lines=lines))
    return data[-limit:].decode(errors="replace")


async def stream(path: Path, *, tail_lines: int | None = None, since: dt.datetime | None = None,
                 timestamps: bool = False, limit_bytes: int | None = None, follow: bool = False,
                 still_running: Callable[[], Awaitable[bool]] | None = None, poll: float = 0.2
                 ) -> AsyncIterator[bytes]:
    """The log as the kubelet serves it; with `follow`, until the container stops writing and has exited."""
    sent = 0

    def clip(chunk: bytes) -> bytes:
        nonlocal sent
        if limit_bytes is not None:
            chunk = chunk[: max(limit_bytes - sent, 0)]
        sent += len(chunk)
        return chunk

    entries = await asyncio.to_thread(read_entries, path)
    offset = await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else 0)
    for entry in select(entries, tail_lines=tail_lines, since=since):
        chunk = clip(_render(entry, timestamps))
        if chunk:
            yield chunk
        if limit_bytes is not None and sent >= limit_bytes:
            return
    if not follow:
        return
    assembler = _Assembler()
    carry = b""
    idle_checks = 0
    while True:
        data = await asyncio.to_thread(_read_from, path, offset)
        if data:
            offset += len(data)
            idle_checks = 0
            carry += data
            *lines, carry = carry.split(b"\n")
            for raw in lines:
                fresh = assembler.feed(raw)
                if fresh is None:
                    continue
                if since is not None and parse_time(fresh.time) < since:
                    continue
                chunk = clip(_render(fresh, timestamps))
                if chunk:
                    yield chunk
                if limit_bytes is not None and sent >= limit_bytes:
                    return
            continue
        idle_checks += 1
        if still_running is not None and idle_checks % 5 == 0 and not await still_running():
            return
        await asyncio.sleep(poll)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(1 << 20)
    except FileNotFoundError:
        return b""
