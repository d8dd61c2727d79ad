"""Run a component only while it holds its Lease (`--leader-elect`)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable

from controlplane.client import Client, LeaderElector


async def run_elected(client: Client, lease_name: str, stop: asyncio.Event,
                      work: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Campaign for `kube-system/<lease_name>`; run `work` while leading.

    Returns 0 when stopped, 1 when leadership was lost: like upstream components,
    the process then exits and its supervisor restarts it as a fresh candidate.
    """
    identity = f"{socket.gethostname()}_{uuid.uuid4()}"
    elector = LeaderElector(client, "kube-system", lease_name, identity)
    inner_stop = asyncio.Event()

    async def lead() -> None:
        await work(inner_stop)

    campaign = asyncio.create_task(elector.run(lead))
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({campaign, stopped}, return_when=asyncio.FIRST_COMPLETED)
    inner_stop.set()
    if campaign not in done:
        campaign.cancel()
        await asyncio.gather(campaign, return_exceptions=True)
        return 0
    stopped.cancel()
    return 0 if stop.is_set() else 1
