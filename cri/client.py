"""Async CRI clients for the runtime and image services, over the runtime's unix socket.

Every method takes the upstream request message and returns the response
message, so the kubelet code reads like the CRI itself. The client adds what a
long-running agent needs around each call: a deadline (longer for image pulls,
the stop grace period plus a margin for StopContainer, the command timeout plus
a margin for ExecSync), retries with back-off while the runtime is UNAVAILABLE
— only for calls that are safe to repeat — and exceptions that name the call
(`cri.errors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from cri.errors import UnavailableError, from_rpc_error
from cri.gen import api_pb2, api_pb2_grpc

Response = TypeVar("Response")
# Calls that change nothing, or whose repetition is harmless by the CRI's own rules.
IDEMPOTENT = {"Version", "Status", "ListPodSandbox", "PodSandboxStatus", "ListContainers", "ContainerStatus",
              "ContainerStats", "ListContainerStats", "ListImages", "ImageStatus", "ImageFsInfo",
              "StopPodSandbox", "RemovePodSandbox", "StopContainer", "RemoveContainer", "RemoveImage"}


def channel_target(endpoint: str) -> str:
    """`unix:///run/x.sock`, `unix:/run/x.sock` or a bare path -> a gRPC target."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint[len("unix://"):]
    if endpoint.startswith("unix:"):
        return endpoint
    return "unix:" + endpoint


class _Service:
    def __init__(self, endpoint: str, timeout: float, retries: int) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self._channel = grpc.aio.insecure_channel(channel_target(endpoint), options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024 + 1024),
        ])

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self: Any) -> Any:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _call(self, method: str, rpc: Callable[..., Awaitable[Response]], request: Any,
                    timeout: float | None = None) -> Response:
        attempts = self.retries + 1 if method in IDEMPOTENT else 1
        delay = 0.1
        for attempt in range(attempts):
            try:
                return await rpc(request, timeout=timeout or self.timeout)
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc, method)
                if isinstance(error, UnavailableError) and attempt + 1 < attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise error from None
        raise AssertionError("unreachable")


class RuntimeClient(_Service):
    """CRI RuntimeService."""

    def __init__(self, endpoint: str, timeout: float = 10.0, retries: int = 3) -> None:
        super().__init__(endpoint, timeout, retries)
        self._stub = api_pb2_grpc.RuntimeServiceStub(self._channel)

    async def version(self, request: api_pb2.VersionRequest) -> api_pb2.VersionResponse:
        return await self._call("Version", self._stub.Version, request)

    async def status(self, request: api_pb2.StatusRequest) -> api_pb2.StatusResponse:
        return await self._call("Status", self._stub.Status, request)

    async def run_pod_sandbox(self, request: api_pb2.RunPodSandboxRequest) -> api_pb2.RunPodSandboxResponse:
        # the sandbox's network set-up (CNI) runs inside this call
        return await self._call("RunPodSandbox", self._stub.RunPodSandbox, request, timeout=max(self.timeout, 120))

    async def stop_pod_sandbox(self, request: api_pb2.StopPodSandboxRequest) -> api_pb2.StopPodSandboxResponse:
        return await self._call("StopPodSandbox", self._stub.StopPodSandbox, request, timeout=max(self.timeout, 60))

    async def remove_pod_sandbox(self, request: api_pb2.RemovePodSandboxRequest) -> api_pb2.RemovePodSandboxResponse:
        return await self._call("RemovePodSandbox", self._stub.RemovePodSandbox, request,
                                timeout=max(self.timeout, 60))

    async def pod_sandbox_status(self, request: api_pb2.PodSandboxStatusRequest
                                 ) -> api_pb2.PodSandboxStatusResponse:
        return await self._call("PodSandboxStatus", self._stub.PodSandboxStatus, request)

    async def list_pod_sandbox(self, request: api_pb2.ListPodSandboxRequest) -> api_pb2.ListPodSandboxResponse:
        return await self._call("ListPodSandbox", self._stub.ListPodSandbox, request)

    async def create_container(self, request: api_pb2.CreateContainerRequest) -> api_pb2.CreateContainerResponse:
        return await self._call("CreateContainer", self._stub.CreateContainer, request, timeout=max(self.timeout, 60))

    async def start_container(self, request: api_pb2.StartContainerRequest) -> api_pb2.StartContainerResponse:
        return await self._call("StartContainer", self._stub.StartContainer, request, timeout=max(self.timeout, 60))

    async def stop_container(self, request: api_pb2.StopContainerRequest) -> api_pb2.StopContainerResponse:
        return await self._call("StopContainer", self._stub.StopContainer, request,
                                timeout=request.timeout + self.timeout)

    async def remove_container(self, request: api_pb2.RemoveContainerRequest) -> api_pb2.RemoveContainerResponse:
        return await self._call("RemoveContainer", self._stub.RemoveContainer, request)

    async def list_containers(self, request: api_pb2.ListContainersRequest) -> api_pb2.ListContainersResponse:
        return await self._call("ListContainers", self._stub.ListContainers, request)

    async def container_status(self, request: api_pb2.ContainerStatusRequest) -> api_pb2.ContainerStatusResponse:
        return await self._call("ContainerStatus", self._stub.ContainerStatus, request)

    async def update_container_resources(self, request: api_pb2.UpdateContainerResourcesRequest
                                         ) -> api_pb2.UpdateContainerResourcesResponse:
        return await self._call("UpdateContainerResources", self._stub.UpdateContainerResources, request)

    async def reopen_container_log(self, request: api_pb2.ReopenContainerLogRequest
                                   ) -> api_pb2.ReopenContainerLogResponse:
        return await self._call("ReopenContainerLog", self._stub.ReopenContainerLog, request)

    async def exec_sync(self, request: api_pb2.ExecSyncRequest) -> api_pb2.ExecSyncResponse:
        budget = request.timeout + self.timeout if request.timeout else None
        return await self._call("ExecSync", self._stub.ExecSync, request, timeout=budget or 24 * 3600)

    async def exec(self, request: api_pb2.ExecRequest) -> api_pb2.ExecResponse:
        return await self._call("Exec", self._stub.Exec, request)

    async def attach(self, request: api_pb2.AttachRequest) -> api_pb2.AttachResponse:
        return await self._call("Attach", self._stub.Attach, request)

    async def port_forward(self, request: api_pb2.PortForwardRequest) -> api_pb2.PortForwardResponse:
        return await self._call("PortForward", self._stub.PortForward, request)

    async def container_stats(self, request: api_pb2.ContainerStatsRequest) -> api_pb2.ContainerStatsResponse:
        return await self._call("ContainerStats", self._stub.ContainerStats, request)

    async def list_container_stats(self, request: api_pb2.ListContainerStatsRequest
                                   ) -> api_pb2.ListContainerStatsResponse:
        return await self._call("ListContainerStats", self._stub.ListContainerStats, request)

    async def update_runtime_config(self, request: api_pb2.UpdateRuntimeConfigRequest
                                    ) -> api_pb2.UpdateRuntimeConfigResponse:
        return await self._call("UpdateRuntimeConfig", self._stub.UpdateRuntimeConfig, request)


class ImageClient(_Service):
    """CRI ImageService."""

    def __init__(self, endpoint: str, timeout: float = 10.0, pull_timeout: float = 300.0, retries: int = 3) -> None:
        super().__init__(endpoint, timeout, retries)
        self.pull_timeout = pull_timeout
        self._stub = api_pb2_grpc.ImageServiceStub(self._channel)

    async def list_images(self, request: api_pb2.ListImagesRequest) -> api_pb2.ListImagesResponse:
        return await self._call("ListImages", self._stub.ListImages, request)

    async def image_status(self, request: api_pb2.ImageStatusRequest) -> api_pb2.ImageStatusResponse:
        return await self._call("ImageStatus", self._stub.ImageStatus, request)

    async def pull_image(self, request: api_pb2.PullImageRequest) -> api_pb2.PullImageResponse:
        return await self._call("PullImage", self._stub.PullImage, request, timeout=self.pull_timeout)

    async def remove_image(self, request: api_pb2.RemoveImageRequest) -> api_pb2.RemoveImageResponse:
        return await self._call("RemoveImage", self._stub.RemoveImage, request)

    async def image_fs_info(self, request: api_pb2.ImageFsInfoRequest) -> api_pb2.ImageFsInfoResponse:
        return await self._call("ImageFsInfo", self._stub.ImageFsInfo, request)
