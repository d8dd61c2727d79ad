"""Fixtures of the API server tests: a plain HTTPS session as the admin, for requests a typed client won't send."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yaml

from controlplane.apiserver.server import APIServer


@pytest.fixture
async def http(api_server: APIServer) -> AsyncIterator[aiohttp.ClientSession]:
    config = yaml.safe_load(api_server.admin_kubeconfig.read_text())
    ctx = ssl.create_default_context(cafile=str(api_server.config.data_dir / "pki" / "ca.crt"))
    session = aiohttp.ClientSession(base_url=api_server.url, connector=aiohttp.TCPConnector(ssl=ctx),
                                    headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"})
    yield session
    await session.close()
