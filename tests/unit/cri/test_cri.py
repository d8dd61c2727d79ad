"""The CRI subset's wire format and the client's error handling, against a real in-process gRPC server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from cri import api_pb2
from cri.client import RuntimeClient, channel_target
from cri.errors import NotFoundError, UnavailableError
from cri.gen import api_pb2_grpc


def test_field_numbers_match_upstream() -> None:
    # tag byte = field_number << 3 | wire_type (2 = length-delimited, 0 = varint)
    assert api_pb2.PodSandboxMetadata(name="a").SerializeToString() == b"\x0a\x01a"
    assert api_pb2.PodSandboxMetadata(attempt=3).SerializeToString() == b"\x20\x03"  # field 4, varint
    assert api_pb2.ContainerConfig(log_path="x").SerializeToString() == b"\x5a\x01x"  # field 11
    assert api_pb2.ContainerConfig(tty=True).SerializeToString() == b"\x70\x01"  # field 14
    resources = api_pb2.LinuxContainerResources(memory_limit_in_bytes=5)
    assert resources.SerializeToString() == b"\x20\x05"  # field 4
    security = api_pb2.LinuxContainerSecurityContext(run_as_group=api_pb2.Int64Value(value=1))
    assert security.SerializeToString() == b"\x62\x02\x08\x01"  # field 12, nested value field 1
    status = api_pb2.ContainerStatus(exit_code=7, log_path="l")
    assert status.SerializeToString() == b"\x38\x07\x7a\x01l"  # fields 7 and 15
    assert api_pb2.CONTAINER_EXITED == 2 and api_pb2.SANDBOX_NOTREADY == 1 and api_pb2.NODE == 2


def test_channel_targets() -> None:
    assert channel_target("unix:///run/c.sock") == "unix:/run/c.sock"
    assert channel_target("/run/c.sock") == "unix:/run/c.sock"


class FakeRuntime(api_pb2_grpc.RuntimeServiceServicer):
    """A real gRPC server implementing two calls, to exercise the client's error mapping and retries."""

    def __init__(self) -> None:
        self.version_calls = 0

    async def Version(self, request: Any, context: grpc.aio.ServicerContext) -> api_pb2.VersionResponse:
        self.version_calls += 1
        if self.version_calls < 3:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "starting up")
        return api_pb2.VersionResponse(runtime_name="test", runtime_version="1")

    async def ContainerStatus(self, request: Any, context: grpc.aio.ServicerContext) -> api_pb2.ContainerStatusResponse:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container_id} not found")
        raise AssertionError("unreachable")

    async def CreateContainer(self, request: Any, context: grpc.aio.ServicerContext) -> api_pb2.CreateContainerResponse:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "busy")
        raise AssertionError("unreachable")


async def test_errors_and_retries(tmp_path: Path) -> None:
    socket = tmp_path / "cri.sock"
    server = grpc.aio.server()
    servicer = FakeRuntime()
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix:{socket}")
    await server.start()
    client = RuntimeClient(f"unix://{socket}", timeout=5)
    try:
        version = await client.version(api_pb2.VersionRequest())
        assert version.runtime_name == "test" and servicer.version_calls == 3  # retried while UNAVAILABLE
        with pytest.raises(NotFoundError, match="ContainerStatus: NOT_FOUND: container abc not found"):
            await client.container_status(api_pb2.ContainerStatusRequest(container_id="abc"))
        with pytest.raises(UnavailableError):  # not idempotent: never retried
            await client.create_container(api_pb2.CreateContainerRequest())
    finally:
        await client.close()
        await server.stop(None)
    await asyncio.sleep(0)
