"""The proxy's informers cache stubs, and still report updates and relist deletions correctly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from controlplane.api.resources import SERVICES
from netproxy.informer import StubInformer, stub


def svc(name: str, rv: str, port: int = 80) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv, "uid": "u-" + name,
                         "managedFields": [{"manager": "x"}]},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": port}]}}


class FakeClient:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.events: list[SimpleNamespace] = []

    async def list(self, rt: Any, namespace: Any, **kw: Any) -> dict[str, Any]:
        return {"items": list(self.items), "metadata": {"resourceVersion": "100"}}

    async def watch(self, rt: Any, namespace: Any, **kw: Any) -> AsyncIterator[SimpleNamespace]:
        while self.events:
            yield self.events.pop(0)
        await asyncio.sleep(3600)


def test_stub_keeps_only_what_a_relist_and_a_delete_need() -> None:
    assert stub(svc("a", "7")) == {"metadata": {"namespace": "ns", "name": "a", "resourceVersion": "7"}}


async def test_handlers_get_whole_objects_and_relist_reports_deletions() -> None:
    client = FakeClient()
    client.items = [svc("a", "1"), svc("b", "2")]
    seen: list[tuple[str, Any]] = []
    informer = StubInformer(client, SERVICES)  # type: ignore[arg-type]
    informer.add_handler(lambda o: seen.append(("add", o)), lambda old, new: seen.append(("update", new)),
                         lambda o: seen.append(("delete", o)))
    client.events = [SimpleNamespace(type="MODIFIED", object=svc("a", "3", port=81))]
    await informer.start()
    await informer.wait_synced()
    for _ in range(50):
        if len(seen) >= 3:
            break
        await asyncio.sleep(0.01)
    assert [k for k, _ in seen] == ["add", "add", "update"]
    assert seen[2][1]["spec"]["ports"] == [{"port": 81}]  # the handler saw the whole object
    assert informer.get("ns", "a") == stub(svc("a", "3"))  # the cache only a stub
    # a relist (here: a restart) without "b" reports its deletion with the stub; "a" is not reported again
    client.items = [svc("a", "3", port=81)]
    client.events = []
    informer._task.cancel()  # type: ignore[union-attr]
    informer._task = None
    await informer.start()
    for _ in range(50):
        if len(seen) >= 4:
            break
        await asyncio.sleep(0.01)
    await informer.stop()
    assert seen[3] == ("delete", stub(svc("b", "2")))
    assert len(seen) == 4
