"""Two candidates, one Lease: never two leaders, and a dead leader is replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from controlplane.api import resources
from controlplane.apiserver.server import APIServer
from controlplane.client import Client, LeaderElector
from tests.helpers import eventually


async def test_one_leader_then_failover(api_server: APIServer) -> None:
    async with Client.from_kubeconfig(api_server.admin_kubeconfig) as client:
        def candidate(name: str) -> LeaderElector:
            return LeaderElector(client, "kube-system", "test-lease", name, lease_duration=2.0,
                                 renew_deadline=1.5, retry_period=0.2)

        first, second = candidate("a"), candidate("b")
        leading: list[str] = []

        def lead(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
            async def work() -> None:
                leading.append(name)
                await asyncio.Event().wait()
            return work

        task_a = asyncio.create_task(first.run(lead("a")))
        await eventually(lambda: first.is_leader, timeout=10)
        task_b = asyncio.create_task(second.run(lead("b")))
        await asyncio.sleep(1.0)
        assert leading == ["a"] and not second.is_leader  # b waits while a renews
        task_a.cancel()  # a dies without releasing the lease
        await asyncio.gather(task_a, return_exceptions=True)
        await eventually(lambda: second.is_leader, timeout=10)
        assert leading == ["a", "b"]
        lease = await client.get(resources.LEASES, "test-lease", "kube-system")
        assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
        task_b.cancel()
        await asyncio.gather(task_b, return_exceptions=True)
