"""The client against a real grpc.aio server on a unix socket: errors, retries, deadlines, helpers.

The server below is a genuine gRPC RuntimeService/ImageService speaking the
generated protocol; each handler does what the test needs a runtime to do
(answer, fail with a status code, stay silent) and counts its calls, so the
client's retry policy is observed from the server's side.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from cri import api_pb2
from cri.client import ImageClient, RuntimeClient, channel_target
from cri.errors import (
    AlreadyExistsError,
    CRIError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from cri.gen import api_pb2_grpc


class FakeRuntime(api_pb2_grpc.RuntimeServiceServicer):
    """A small runtime: one known container, a switchable outage, a call counter."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.unavailable_for = 0  # how many next calls fail with UNAVAILABLE
        self.stop_requests: list[api_pb2.StopContainerRequest] = []
        self.never_answer = asyncio.Event()

    async def _outage(self, context: grpc.aio.ServicerContext) -> None:
        if self.unavailable_for > 0:
            self.unavailable_for -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "runtime restarting")

    async def Version(self, request: api_pb2.VersionRequest,
                      context: grpc.aio.ServicerContext) -> api_pb2.VersionResponse:
        self.calls["Version"] += 1
        await self._outage(context)
        return api_pb2.VersionResponse(version="0.1.0", runtime_name="fake", runtime_version="1.0",
                                       runtime_api_version="v1")

    async def ContainerStatus(self, request: api_pb2.ContainerStatusRequest,
                              context: grpc.aio.ServicerContext) -> api_pb2.ContainerStatusResponse:
        self.calls["ContainerStatus"] += 1
        await self._outage(context)
        if request.container_id != "c1":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container_id!r} not found")
        return api_pb2.ContainerStatusResponse(status=api_pb2.ContainerStatus(
            id="c1", state=api_pb2.CONTAINER_RUNNING, metadata=api_pb2.ContainerMetadata(name="app")))

    async def CreateContainer(self, request: api_pb2.CreateContainerRequest,
                              context: grpc.aio.ServicerContext) -> api_pb2.CreateContainerResponse:
        self.calls["CreateContainer"] += 1
        await self._outage(context)
        if not request.config.metadata.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "container config must include metadata")
        if request.config.metadata.name == "app":
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "name app is reserved")
        return api_pb2.CreateContainerResponse(container_id="c2")

    async def StopContainer(self, request: api_pb2.StopContainerRequest,
                            context: grpc.aio.ServicerContext) -> api_pb2.StopContainerResponse:
        self.calls["StopContainer"] += 1
        self.stop_requests.append(request)
        return api_pb2.StopContainerResponse()

    async def ListContainers(self, request: api_pb2.ListContainersRequest,
                             context: grpc.aio.ServicerContext) -> api_pb2.ListContainersResponse:
        self.calls["ListContainers"] += 1
        await self.never_answer.wait()  # the client's deadline ends the call
        return api_pb2.ListContainersResponse()

    async def Status(self, request: api_pb2.StatusRequest,
                     context: grpc.aio.ServicerContext) -> api_pb2.StatusResponse:
        self.calls["Status"] += 1
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
        raise AssertionError("abort returns never")


class FakeImages(api_pb2_grpc.ImageServiceServicer):
    async def ImageStatus(self, request: api_pb2.ImageStatusRequest,
                          context: grpc.aio.ServicerContext) -> api_pb2.ImageStatusResponse:
        if request.image.image == "present:1":
            return api_pb2.ImageStatusResponse(image=api_pb2.Image(id="sha256:abc", repo_tags=["present:1"]))
        return api_pb2.ImageStatusResponse()

    async def PullImage(self, request: api_pb2.PullImageRequest,
                        context: grpc.aio.ServicerContext) -> api_pb2.PullImageResponse:
        return api_pb2.PullImageResponse(image_ref=f"sha256:{request.image.image}:{request.auth.username}")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, FakeRuntime]]:
    with tempfile.TemporaryDirectory(prefix="pyk8s-cri-") as tmp:
        socket = Path(tmp) / "cri.sock"
        runtime = FakeRuntime()
        srv = grpc.aio.server()
        api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, srv)
        api_pb2_grpc.add_ImageServiceServicer_to_server(FakeImages(), srv)
        srv.add_insecure_port(f"unix:{socket}")
        await srv.start()
        try:
            yield f"unix://{socket}", runtime
        finally:
            runtime.never_answer.set()
            await srv.stop(None)


@pytest.fixture
async def client(server: tuple[str, FakeRuntime]) -> AsyncIterator[RuntimeClient]:
    async with RuntimeClient(server[0], timeout=5.0) as rc:
        rc.backoff = 0.01
        yield rc


def test_endpoint_forms() -> None:
    assert channel_target("unix:///run/containerd/containerd.sock") == "unix:/run/containerd/containerd.sock"
    assert channel_target("/run/containerd/containerd.sock") == "unix:/run/containerd/containerd.sock"
    assert channel_target("unix:/tmp/x.sock") == "unix:/tmp/x.sock"


async def test_answers_and_helpers(client: RuntimeClient, server: tuple[str, FakeRuntime]) -> None:
    assert (await client.version()).runtime_name == "fake"
    status = await client.container_status("c1")
    assert status.status.state == api_pb2.CONTAINER_RUNNING
    same = await client.container_status(api_pb2.ContainerStatusRequest(container_id="c1"))
    assert same == status
    await client.stop_container("c1", timeout=30)
    await client.stop_container(api_pb2.StopContainerRequest(container_id="c1", timeout=5))
    assert [(r.container_id, r.timeout) for r in server[1].stop_requests] == [("c1", 30), ("c1", 5)]


async def test_not_found_names_the_call(client: RuntimeClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await client.container_status("nope")
    assert caught.value.method == "ContainerStatus"
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "ContainerStatus" in str(caught.value) and "nope" in caught.value.details


async def test_status_codes_map_to_classes(client: RuntimeClient) -> None:
    with pytest.raises(InvalidArgumentError, match="CreateContainer"):
        await client.create_container(api_pb2.CreateContainerRequest(config=api_pb2.ContainerConfig()))
    with pytest.raises(AlreadyExistsError, match="CreateContainer"):
        await client.create_container(api_pb2.CreateContainerRequest(
            config=api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="app"))))
    with pytest.raises(CRIError) as caught:
        await client.status()
    assert type(caught.value) is CRIError and caught.value.code == grpc.StatusCode.PERMISSION_DENIED


async def test_idempotent_call_is_retried_through_an_outage(client: RuntimeClient,
                                                           server: tuple[str, FakeRuntime]) -> None:
    runtime = server[1]
    runtime.unavailable_for = 2
    assert (await client.container_status("c1")).status.id == "c1"
    assert runtime.calls["ContainerStatus"] == 3


async def test_retries_end_with_unavailable(client: RuntimeClient, server: tuple[str, FakeRuntime]) -> None:
    runtime = server[1]
    runtime.unavailable_for = 100
    with pytest.raises(UnavailableError, match="Version"):
        await client.version()
    assert runtime.calls["Version"] == client.retries + 1


async def test_create_is_never_retried(client: RuntimeClient, server: tuple[str, FakeRuntime]) -> None:
    runtime = server[1]
    runtime.unavailable_for = 1
    request = api_pb2.CreateContainerRequest(config=api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="web")))
    with pytest.raises(UnavailableError, match="CreateContainer"):
        await client.create_container(request)
    assert runtime.calls["CreateContainer"] == 1
    assert (await client.create_container(request)).container_id == "c2"


async def test_deadline(server: tuple[str, FakeRuntime]) -> None:
    async with RuntimeClient(server[0], timeout=0.3) as rc:
        with pytest.raises(DeadlineExceededError, match="ListContainers"):
            await rc.list_containers()


async def test_no_runtime_at_the_socket() -> None:
    with tempfile.TemporaryDirectory(prefix="pyk8s-cri-") as tmp:
        async with RuntimeClient(str(Path(tmp) / "missing.sock"), retries=1) as rc:
            rc.backoff = 0.01
            with pytest.raises(UnavailableError, match="Version"):
                await rc.version()


async def test_image_client(server: tuple[str, FakeRuntime]) -> None:
    async with ImageClient(server[0]) as images:
        assert (await images.image_status("present:1")).image.id == "sha256:abc"
        assert not (await images.image_status("absent:1")).HasField("image")
        pulled = await images.pull_image("busybox:1", auth=api_pb2.AuthConfig(username="u"))
        assert pulled.image_ref == "sha256:busybox:1:u"


def test_client_built_before_its_event_loop() -> None:
    """A kubelet may build its clients before asyncio.run(); the channel belongs to the loop that uses it."""
    with tempfile.TemporaryDirectory(prefix="pyk8s-cri-") as tmp:
        socket = Path(tmp) / "cri.sock"
        client = RuntimeClient(str(socket))

        async def scenario() -> str:
            srv = grpc.aio.server()
            api_pb2_grpc.add_RuntimeServiceServicer_to_server(FakeRuntime(), srv)
            srv.add_insecure_port(f"unix:{socket}")
            await srv.start()
            try:
                async with client:
                    return str((await client.version()).runtime_name)
            finally:
                await srv.stop(None)

        assert asyncio.run(scenario()) == "fake"
