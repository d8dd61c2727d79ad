"""Open a store from a URL: `sqlite:///abs/path/state.db` (or a plain path), `etcd://host:port[,host:port]`."""

from __future__ import annotations

from pathlib import Path

from controlplane.storage.interface import Store


def open_store(url: str) -> Store:
    if url.startswith("sqlite://"):
        from controlplane.storage.sqlite import SQLiteStore

        return SQLiteStore(Path(url[len("sqlite://"):]))
    if url.startswith("etcd://"):
        from controlplane.storage.etcd import EtcdStore

        return EtcdStore([f"http://{e}" for e in url[len("etcd://"):].split(",") if e])
    if "://" in url:
        raise ValueError(f"unknown storage URL scheme in {url!r}; expected sqlite:///path")
    from controlplane.storage.sqlite import SQLiteStore

    return SQLiteStore(Path(url))
