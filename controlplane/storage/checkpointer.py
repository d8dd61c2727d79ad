"""Copies the SQLite WAL back into the database file from a thread of its own.

SQLite's automatic checkpoint runs inside whichever commit crosses the WAL's size
threshold, and it ends with an fsync of the database file: under load that one
commit, and every write queued behind it in the group commit, waits for the disk
(batches of one row taking 20-30 ms in the API benchmark). The writer connection
turns the automatic checkpoint off and tells this thread how much it has
committed; the thread runs a PASSIVE checkpoint, which never blocks the writer
nor readers, whenever about a threshold's worth of rows has been committed since
the last one. The store's periodic compaction still truncates the WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], *, rows_per_checkpoint: int = 1000) -> None:
        self._connect = connect
        self.rows_per_checkpoint = rows_per_checkpoint
        self._rows_since = 0  # written by the writer thread only
        self._wanted = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def committed(self, rows: int) -> None:
        """Called by the writer after each commit."""
        self._rows_since += rows
        if self._rows_since >= self.rows_per_checkpoint:
            self._rows_since = 0
            self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                    log.debug("checkpoint: busy=%s, %s of %s WAL frames in the database", busy, copied, frames)
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed; the next one will retry")
        finally:
            conn.close()
