"""The agent's API client bounds requests in flight (and so its connections), never its watches."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from agent.apiclient import NodeClient
from controlplane.api import resources


async def test_requests_in_flight_are_bounded_and_watches_are_not_counted() -> None:
    in_flight = 0
    most = 0
    watching = 0
    release_watches = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, most, watching
        if request.query.get("watch") == "true":
            watching += 1
            response = web.StreamResponse()
            await response.prepare(request)
            await release_watches.wait()
            return response
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.json_response({"kind": "Pod", "metadata": {"name": request.match_info["name"]}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/pods/{name}", handler)
    app.router.add_get("/api/v1/pods", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = NodeClient(f"http://127.0.0.1:{port}", max_requests=3)

    async def watch() -> None:
        async for _event in client.watch(resources.PODS):
            pass

    watches = [asyncio.create_task(watch()) for _ in range(5)]
    try:
        for _ in range(100):
            if watching == 5:
                break
            await asyncio.sleep(0.01)
        assert watching == 5  # all five watches are open before any request
        pods = await asyncio.wait_for(asyncio.gather(
            *(client.get(resources.PODS, f"p{i}", "default") for i in range(20))), 10)
        assert [p["metadata"]["name"] for p in pods] == [f"p{i}" for i in range(20)]
        assert most == 3
    finally:
        release_watches.set()
        for task in watches:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await client.close()
        await runner.cleanup()
