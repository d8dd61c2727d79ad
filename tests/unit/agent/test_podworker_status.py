"""A pod worker keeps one copy of its pod: the informer's, unless a status write returned a newer one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from agent.podworker import PodWorker

Obj = dict[str, Any]


def pod(rv: str, phase: str = "Pending") -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": rv},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": phase}}


class FakeClient:
    def __init__(self, answer: Obj, during: Any = None) -> None:
        self.answer = answer
        self.during = during
        self.patches: list[Obj] = []

    async def patch(self, _rt: Any, _name: str, body: Obj, _namespace: str | None, **_kw: Any) -> Obj:
        self.patches.append(body)
        if self.during is not None:
            self.during()
        return self.answer


def worker(client: FakeClient, current: Obj) -> PodWorker:
    return PodWorker(SimpleNamespace(client=client), "u1", current)  # type: ignore[arg-type]


async def test_the_answer_is_kept_when_it_is_newer() -> None:
    answer = pod("12", "Running")
    w = worker(FakeClient(answer), pod("10"))
    await w._write_status({"phase": "Running"})
    assert w.pod is answer


async def test_the_informer_copy_is_kept_when_its_event_came_first() -> None:
    informer_copy = pod("12", "Running")
    client = FakeClient(pod("12", "Running"))
    w = worker(client, pod("10"))
    client.during = lambda: w.update(informer_copy)  # the watch event arrives while the write is in flight
    await w._write_status({"phase": "Running"})
    assert w.pod is informer_copy  # not a second copy of the same version


async def test_an_older_answer_never_replaces_a_newer_pod() -> None:
    newer = pod("15", "Running")
    client = FakeClient(pod("12", "Running"))
    w = worker(client, pod("10"))
    client.during = lambda: w.update(newer)
    await w._write_status({"phase": "Running"})
    assert w.pod is newer


async def test_an_answer_for_another_pod_is_ignored() -> None:
    other = pod("20", "Running")
    other["metadata"]["uid"] = "u2"
    current = pod("10")
    w = worker(FakeClient(other), current)
    await w._write_status({"phase": "Running"})
    assert w.pod is current
