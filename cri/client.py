"""Async CRI clients for the runtime and image services, over the runtime's unix socket.

Why this module exists: the kubelet (`agent/`) drives containerd only through
CRI v1; this is the one place that knows how to reach the socket, how long each
call may take, which calls may be repeated, and how gRPC failures become Python
exceptions.

Style, chosen once for every method: a method is named after its RPC in
snake_case, takes the upstream request message (`api_pb2.<Rpc>Request`) and
returns the upstream response message, so kubelet code reads like the CRI
itself and no field is hidden behind a wrapper. Two conveniences remove
repetition without a second style:

* requests that carry nothing a caller must choose (`version`, `status`,
  `list_*`, `image_fs_info`) may be omitted: `await runtime.version()`;
* requests that name a single object also accept that object's id or image
  reference as a plain string, with the few other fields as keyword arguments:
  `await runtime.stop_container(container_id, timeout=30)`,
  `await runtime.container_status(container_id)`,
  `await images.pull_image("pyk8s.local/busybox:1")`.

Around each call the client adds what a long-running agent needs:

* a deadline: `timeout` by default; the grace period plus a margin for
  StopContainer; the command timeout plus a margin for ExecSync (none when the
  command may run forever); `pull_timeout` for PullImage; a generous one for the
  calls in which the runtime does heavy work (sandbox network set-up, snapshots);
* retries with exponential back-off while the runtime is UNAVAILABLE (socket
  missing, containerd restarting), only for calls that are safe to repeat: reads,
  and the calls the CRI itself declares idempotent (stop/remove). Create and run
  calls are never repeated, because a lost answer may hide a created object;
* `cri.errors` exceptions that name the RPC instead of raw `grpc.aio.AioRpcError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar

import grpc

from cri.errors import UnavailableError, from_rpc_error
from cri.gen import api_pb2, api_pb2_grpc

Response = TypeVar("Response")

# Calls that change nothing, or whose repetition is harmless by the CRI's own
# contract ("this call is idempotent"), or that only hand out a streaming URL.
IDEMPOTENT = frozenset({
    "Version", "Status", "ListPodSandbox", "PodSandboxStatus", "ListContainers", "ContainerStatus",
    "ContainerStats", "ListContainerStats", "ListImages", "ImageStatus", "ImageFsInfo",
    "StopPodSandbox", "RemovePodSandbox", "StopContainer", "RemoveContainer", "RemoveImage",
    "Exec", "Attach", "PortForward",
})

# ExecSync may carry 16 MiB of stdout and 16 MiB of stderr (the runtime caps each).
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
# Time the runtime needs on top of a grace period or command timeout it enforces itself.
MARGIN_SECONDS = 10.0
# Calls in which containerd does real work (CNI, snapshots, mounts, shims).
SLOW_CALL_SECONDS = 120.0


def channel_target(endpoint: str) -> str:
    """`unix:///run/x.sock`, `unix:/run/x.sock` or a bare path -> a gRPC target."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint[len("unix://"):]
    if endpoint.startswith("unix:"):
        return endpoint
    return "unix:" + endpoint


class _Service:
    """One gRPC channel to the runtime and the call policy shared by both services.

    The channel is opened on first use, so a client may be built outside the
    event loop that later uses it (grpc.aio binds a channel to the running loop).
    """

    def __init__(self, endpoint: str, timeout: float, retries: int, backoff: float = 0.1,
                 max_backoff: float = 2.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._channel: grpc.aio.Channel | None = None

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(channel_target(self.endpoint), options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ])
        return self._channel

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _call(self, method: str, rpc: Callable[..., Awaitable[Response]], request: Any,
                    timeout: float | None = -1.0) -> Response:
        """Call `rpc` with a deadline (`-1`: the client's default, `None`: none); map errors; retry."""
        deadline = self.timeout if timeout is not None and timeout < 0 else timeout
        attempts = self.retries + 1 if method in IDEMPOTENT else 1
        delay = self.backoff
        for attempt in range(attempts):
            try:
                return await rpc(request, timeout=deadline)
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc, method)
                if isinstance(error, UnavailableError) and attempt + 1 < attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
                    continue
                raise error from None
        raise AssertionError("unreachable")


class RuntimeClient(_Service):
    """CRI RuntimeService: sandboxes, containers, exec/attach/port-forward URLs, stats, runtime status."""

    def __init__(self, endpoint: str, timeout: float = 10.0, retries: int = 3) -> None:
        super().__init__(endpoint, timeout, retries)
        self._stubs: tuple[grpc.aio.Channel, api_pb2_grpc.RuntimeServiceStub] | None = None

    @property
    def _stub(self) -> api_pb2_grpc.RuntimeServiceStub:
        channel = self._open()
        if self._stubs is None or self._stubs[0] is not channel:
            self._stubs = (channel, api_pb2_grpc.RuntimeServiceStub(channel))
        return self._stubs[1]

    def _slow(self) -> float:
        return max(self.timeout, SLOW_CALL_SECONDS)

    # -- runtime ---------------------------------------------------------------------------

    async def version(self, request: api_pb2.VersionRequest | None = None) -> api_pb2.VersionResponse:
        if request is None:
            request = api_pb2.VersionRequest()
        return await self._call("Version", self._stub.Version, request)

    async def status(self, request: api_pb2.StatusRequest | None = None) -> api_pb2.StatusResponse:
        if request is None:
            request = api_pb2.StatusRequest()
        return await self._call("Status", self._stub.Status, request)

    async def update_runtime_config(self, request: api_pb2.UpdateRuntimeConfigRequest
                                    ) -> api_pb2.UpdateRuntimeConfigResponse:
        return await self._call("UpdateRuntimeConfig", self._stub.UpdateRuntimeConfig, request)

    # -- sandboxes -------------------------------------------------------------------------

    async def run_pod_sandbox(self, request: api_pb2.RunPodSandboxRequest) -> api_pb2.RunPodSandboxResponse:
        # the sandbox's network set-up (CNI) runs inside this call
        return await self._call("RunPodSandbox", self._stub.RunPodSandbox, request, timeout=self._slow())

    async def stop_pod_sandbox(self, request: api_pb2.StopPodSandboxRequest | str
                               ) -> api_pb2.StopPodSandboxResponse:
        if isinstance(request, str):
            request = api_pb2.StopPodSandboxRequest(pod_sandbox_id=request)
        return await self._call("StopPodSandbox", self._stub.StopPodSandbox, request, timeout=self._slow())

    async def remove_pod_sandbox(self, request: api_pb2.RemovePodSandboxRequest | str
                                 ) -> api_pb2.RemovePodSandboxResponse:
        if isinstance(request, str):
            request = api_pb2.RemovePodSandboxRequest(pod_sandbox_id=request)
        return await self._call("RemovePodSandbox", self._stub.RemovePodSandbox, request,
                                timeout=self._slow())

    async def pod_sandbox_status(self, request: api_pb2.PodSandboxStatusRequest | str, *,
                                 verbose: bool = False) -> api_pb2.PodSandboxStatusResponse:
        if isinstance(request, str):
            request = api_pb2.PodSandboxStatusRequest(pod_sandbox_id=request, verbose=verbose)
        return await self._call("PodSandboxStatus", self._stub.PodSandboxStatus, request)

    async def list_pod_sandbox(self, request: api_pb2.ListPodSandboxRequest | None = None
                               ) -> api_pb2.ListPodSandboxResponse:
        if request is None:
            request = api_pb2.ListPodSandboxRequest()
        return await self._call("ListPodSandbox", self._stub.ListPodSandbox, request)

    # -- containers ------------------------------------------------------------------------

    async def create_container(self, request: api_pb2.CreateContainerRequest
                               ) -> api_pb2.CreateContainerResponse:
        return await self._call("CreateContainer", self._stub.CreateContainer, request, timeout=self._slow())

    async def start_container(self, request: api_pb2.StartContainerRequest | str
                              ) -> api_pb2.StartContainerResponse:
        if isinstance(request, str):
            request = api_pb2.StartContainerRequest(container_id=request)
        return await self._call("StartContainer", self._stub.StartContainer, request, timeout=self._slow())

    async def stop_container(self, request: api_pb2.StopContainerRequest | str, *, timeout: int = 0
                             ) -> api_pb2.StopContainerResponse:
        """Stop with a grace period of `timeout` seconds, then SIGKILL; waits that long plus a margin."""
        if isinstance(request, str):
            request = api_pb2.StopContainerRequest(container_id=request, timeout=max(timeout, 0))
        return await self._call("StopContainer", self._stub.StopContainer, request,
                                timeout=max(request.timeout, 0) + max(self.timeout, MARGIN_SECONDS))

    async def remove_container(self, request: api_pb2.RemoveContainerRequest | str
                               ) -> api_pb2.RemoveContainerResponse:
        if isinstance(request, str):
            request = api_pb2.RemoveContainerRequest(container_id=request)
        return await self._call("RemoveContainer", self._stub.RemoveContainer, request, timeout=self._slow())

    async def list_containers(self, request: api_pb2.ListContainersRequest | None = None
                              ) -> api_pb2.ListContainersResponse:
        if request is None:
            request = api_pb2.ListContainersRequest()
        return await self._call("ListContainers", self._stub.ListContainers, request)

    async def container_status(self, request: api_pb2.ContainerStatusRequest | str, *, verbose: bool = False
                               ) -> api_pb2.ContainerStatusResponse:
        if isinstance(request, str):
            request = api_pb2.ContainerStatusRequest(container_id=request, verbose=verbose)
        return await self._call("ContainerStatus", self._stub.ContainerStatus, request)

    async def update_container_resources(self, request: api_pb2.UpdateContainerResourcesRequest
                                         ) -> api_pb2.UpdateContainerResourcesResponse:
        return await self._call("UpdateContainerResources", self._stub.UpdateContainerResources, request)

    async def reopen_container_log(self, request: api_pb2.ReopenContainerLogRequest | str
                                   ) -> api_pb2.ReopenContainerLogResponse:
        if isinstance(request, str):
            request = api_pb2.ReopenContainerLogRequest(container_id=request)
        return await self._call("ReopenContainerLog", self._stub.ReopenContainerLog, request)

    # -- exec, attach, port-forward --------------------------------------------------------

    async def exec_sync(self, request: api_pb2.ExecSyncRequest) -> api_pb2.ExecSyncResponse:
        """Run a command to completion; `request.timeout` 0 lets it run without a deadline, as upstream."""
        deadline = request.timeout + max(self.timeout, MARGIN_SECONDS) if request.timeout > 0 else None
        return await self._call("ExecSync", self._stub.ExecSync, request, timeout=deadline)

    async def exec(self, request: api_pb2.ExecRequest) -> api_pb2.ExecResponse:
        return await self._call("Exec", self._stub.Exec, request)

    async def attach(self, request: api_pb2.AttachRequest) -> api_pb2.AttachResponse:
        return await self._call("Attach", self._stub.Attach, request)

    async def port_forward(self, request: api_pb2.PortForwardRequest) -> api_pb2.PortForwardResponse:
        return await self._call("PortForward", self._stub.PortForward, request)

    # -- stats -----------------------------------------------------------------------------

    async def container_stats(self, request: api_pb2.ContainerStatsRequest | str
                              ) -> api_pb2.ContainerStatsResponse:
        if isinstance(request, str):
            request = api_pb2.ContainerStatsRequest(container_id=request)
        return await self._call("ContainerStats", self._stub.ContainerStats, request)

    async def list_container_stats(self, request: api_pb2.ListContainerStatsRequest | None = None
                                   ) -> api_pb2.ListContainerStatsResponse:
        if request is None:
            request = api_pb2.ListContainerStatsRequest()
        return await self._call("ListContainerStats", self._stub.ListContainerStats, request)


class ImageClient(_Service):
    """CRI ImageService: pull, inspect, list and remove images."""

    def __init__(self, endpoint: str, timeout: float = 10.0, pull_timeout: float = 300.0,
                 retries: int = 3) -> None:
        super().__init__(endpoint, timeout, retries)
        self.pull_timeout = pull_timeout
        self._stubs: tuple[grpc.aio.Channel, api_pb2_grpc.ImageServiceStub] | None = None

    @property
    def _stub(self) -> api_pb2_grpc.ImageServiceStub:
        channel = self._open()
        if self._stubs is None or self._stubs[0] is not channel:
            self._stubs = (channel, api_pb2_grpc.ImageServiceStub(channel))
        return self._stubs[1]

    async def list_images(self, request: api_pb2.ListImagesRequest | None = None
                          ) -> api_pb2.ListImagesResponse:
        if request is None:
            request = api_pb2.ListImagesRequest()
        return await self._call("ListImages", self._stub.ListImages, request)

    async def image_status(self, request: api_pb2.ImageStatusRequest | str, *, verbose: bool = False
                           ) -> api_pb2.ImageStatusResponse:
        """The image, or a response whose `image` is unset (`HasField("image")` false) when it is absent."""
        if isinstance(request, str):
            request = api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=request), verbose=verbose)
        return await self._call("ImageStatus", self._stub.ImageStatus, request)

    async def pull_image(self, request: api_pb2.PullImageRequest | str, *,
                         auth: api_pb2.AuthConfig | None = None) -> api_pb2.PullImageResponse:
        if isinstance(request, str):
            request = api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=request), auth=auth)
        return await self._call("PullImage", self._stub.PullImage, request, timeout=self.pull_timeout)

    async def remove_image(self, request: api_pb2.RemoveImageRequest | str) -> api_pb2.RemoveImageResponse:
        if isinstance(request, str):
            request = api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=request))
        return await self._call("RemoveImage", self._stub.RemoveImage, request,
                                timeout=max(self.timeout, 60.0))

    async def image_fs_info(self, request: api_pb2.ImageFsInfoRequest | None = None
                            ) -> api_pb2.ImageFsInfoResponse:
        if request is None:
            request = api_pb2.ImageFsInfoRequest()
        return await self._call("ImageFsInfo", self._stub.ImageFsInfo, request)
