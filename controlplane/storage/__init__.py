"""Revisioned key-value storage for API objects: SQLite (embedded default) and etcd (HA).

`interface.Store` is the contract; every backend passes `tests/unit/storage`'s
conformance suite.
"""
