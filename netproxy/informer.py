"""Informers for the proxy whose caches keep a stub of each object instead of the whole object.

The proxy reads Services and EndpointSlices once, in its handlers, into its own
compact model (`tracker`); it never reads the informer's cache. The cache still
has two uses: a relist compares resourceVersions to report only what changed,
and reports objects gone since the last list by handing their cached copy to the
delete handler, which needs only the namespace and name. So a stub with those
three fields does, and at 10k services x 10 endpoints it is ~10 MB instead of
the ~70 MB (more with managedFields) of the decoded objects.
"""

from __future__ import annotations

from typing import Any

from controlplane.client import Informer
from netproxy.model import own

Obj = dict[str, Any]
_STUB_FIELDS = ("namespace", "name", "resourceVersion")


def stub(obj: Obj) -> Obj:
    """What the proxy's informer caches keep of `obj`: the metadata fields a relist and a delete need."""
    md = obj.get("metadata") or {}
    return {"metadata": {k: own(md[k]) for k in _STUB_FIELDS if k in md}}


class StubInformer(Informer):
    """An Informer that hands its handlers whole objects but caches only `stub(obj)`.

    Handlers get the full new object (add, update, watch DELETED); the old object of an
    update and the object of a delete found by a relist are stubs. Unsuitable for
    indexes or for readers of `get`/`list`, which the proxy does not use.
    """

    def _store(self, key: str, obj: Obj) -> None:
        super()._store(key, stub(obj))
