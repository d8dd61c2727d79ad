"""What the agent knows of the runtime: its pods and containers, read through CRI.

Every decision of a pod worker starts from a fresh `PodRuntime` snapshot built
from the runtime itself, never from memory of what the agent did. That is what
makes the agent safe to kill at any moment: after a restart (or a containerd
restart) it finds the same sandboxes and containers by their labels, takes
restart counts from their annotations, and creates nothing twice.

This is the only module of the agent that speaks CRI messages; the rest of
the agent works with the plain snapshots defined here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cri import api_pb2
from cri.client import ImageClient, RuntimeClient
from cri.errors import NotFoundError

# Labels and annotations that tie runtime objects to API objects (upstream's names).
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
MANAGED_BY = "io.pyk8s.agent.node"  # which node's agent made it: several agents may share a runtime

CREATED, RUNNING, EXITED, UNKNOWN = "created", "running", "exited", "unknown"
_STATE_NAMES = {api_pb2.CONTAINER_CREATED: CREATED, api_pb2.CONTAINER_RUNNING: RUNNING,
                api_pb2.CONTAINER_EXITED: EXITED, api_pb2.CONTAINER_UNKNOWN: UNKNOWN}


@dataclass
class Sandbox:
    id: str
    uid: str
    name: str
    namespace: str
    attempt: int
    ready: bool
    created_at: int
    ip: str = ""
    additional_ips: list[str] = field(default_factory=list)


@dataclass
class Container:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: str
    created_at: int
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    restart_count: int = 0
    spec_hash: str = ""
    log_path: str = ""
    termination_message_path: str = ""


@dataclass
class PodRuntime:
    """Everything of one pod in the runtime, newest first."""

    uid: str
    sandboxes: list[Sandbox] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)

    @property
    def sandbox(self) -> Sandbox | None:
        return self.sandboxes[0] if self.sandboxes else None

    def latest(self, name: str) -> Container | None:
        for container in self.containers:
            if container.name == name:
                return container
        return None

    def history(self, name: str) -> list[Container]:
        return [c for c in self.containers if c.name == name]


def _sandbox_from(sb: api_pb2.PodSandbox | api_pb2.PodSandboxStatus) -> Sandbox:
    return Sandbox(id=sb.id, uid=sb.metadata.uid, name=sb.metadata.name, namespace=sb.metadata.namespace,
                   attempt=sb.metadata.attempt, ready=sb.state == api_pb2.SANDBOX_READY,
                   created_at=sb.created_at)


def _container_from(status: api_pb2.ContainerStatus, sandbox_id: str) -> Container:
    annotations = status.annotations
    return Container(
        id=status.id, sandbox_id=sandbox_id, name=status.metadata.name, attempt=status.metadata.attempt,
        state=_STATE_NAMES.get(status.state, UNKNOWN), created_at=status.created_at,
        started_at=status.started_at, finished_at=status.finished_at, exit_code=status.exit_code,
        reason=status.reason, message=status.message, image=status.image.image, image_ref=status.image_ref,
        restart_count=int(annotations.get(RESTART_COUNT, "0") or 0), spec_hash=annotations.get(CONTAINER_HASH, ""),
        log_path=status.log_path, termination_message_path=annotations.get(TERMINATION_MESSAGE_PATH, ""))


class Runtime:
    """The node's container runtime, seen as pods: snapshots in, CRI calls out."""

    def __init__(self, endpoint: str, node_name: str) -> None:
        self.endpoint = endpoint
        self.node_name = node_name
        self.runtime = RuntimeClient(endpoint)
        self.images = ImageClient(endpoint)

    async def close(self) -> None:
        await self.runtime.close()
        await self.images.close()

    # -- reads -------------------------------------------------------------------------

    def _ours(self) -> dict[str, str]:
        return {MANAGED_BY: self.node_name}

    async def list_sandboxes(self) -> list[api_pb2.PodSandbox]:
        response = await self.runtime.list_pod_sandbox(api_pb2.ListPodSandboxRequest(
            filter=api_pb2.PodSandboxFilter(label_selector=self._ours())))
        return list(response.items)

    async def list_containers(self) -> list[api_pb2.Container]:
        response = await self.runtime.list_containers(api_pb2.ListContainersRequest(
            filter=api_pb2.ContainerFilter(label_selector=self._ours())))
        return list(response.containers)

    async def pod(self, uid: str) -> PodRuntime:
        """A fresh snapshot of one pod: sandboxes with their IPs, containers with exit codes."""
        selector = {**self._ours(), POD_UID: uid}
        sandboxes_resp, containers_resp = await asyncio.gather(
            self.runtime.list_pod_sandbox(api_pb2.ListPodSandboxRequest(
                filter=api_pb2.PodSandboxFilter(label_selector=selector))),
            self.runtime.list_containers(api_pb2.ListContainersRequest(
                filter=api_pb2.ContainerFilter(label_selector=selector))))
        result = PodRuntime(uid)
        for sb in sorted(sandboxes_resp.items, key=lambda s: (s.metadata.attempt, s.created_at), reverse=True):
            sandbox = _sandbox_from(sb)
            if sandbox.ready:
                try:
                    status = await self.runtime.pod_sandbox_status(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sb.id))
                except NotFoundError:
                    continue
                sandbox.ip = status.status.network.ip
                sandbox.additional_ips = [ip.ip for ip in status.status.network.additional_ips]
            result.sandboxes.append(sandbox)
        statuses = await asyncio.gather(*(self._container_status(c) for c in containers_resp.containers))
        result.containers = sorted((c for c in statuses if c is not None),
                                   key=lambda c: (c.restart_count, c.created_at), reverse=True)
        return result

    async def _container_status(self, container: api_pb2.Container) -> Container | None:
        try:
            response = await self.runtime.container_status(api_pb2.ContainerStatusRequest(container_id=container.id))
        except NotFoundError:
            return None
        return _container_from(response.status, container.pod_sandbox_id)

    # -- writes ------------------------------------------------------------------------

    async def run_sandbox(self, config: api_pb2.PodSandboxConfig) -> str:
        config.labels[MANAGED_BY] = self.node_name
        response = await self.runtime.run_pod_sandbox(api_pb2.RunPodSandboxRequest(config=config))
        return str(response.pod_sandbox_id)

    async def create_container(self, sandbox_id: str, config: api_pb2.ContainerConfig,
                               sandbox_config: api_pb2.PodSandboxConfig) -> str:
        config.labels[MANAGED_BY] = self.node_name
        response = await self.runtime.create_container(api_pb2.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config))
        return str(response.container_id)

    async def start_container(self, container_id: str) -> None:
        await self.runtime.start_container(api_pb2.StartContainerRequest(container_id=container_id))

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        try:
            await self.runtime.stop_container(api_pb2.StopContainerRequest(
                container_id=container_id, timeout=max(grace_seconds, 0)))
        except NotFoundError:
            pass

    async def remove_container(self, container_id: str) -> None:
        try:
            await self.runtime.remove_container(api_pb2.RemoveContainerRequest(container_id=container_id))
        except NotFoundError:
            pass

    async def stop_sandbox(self, sandbox_id: str) -> None:
        try:
            await self.runtime.stop_pod_sandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        except NotFoundError:
            pass

    async def remove_sandbox(self, sandbox_id: str) -> None:
        try:
            await self.runtime.remove_pod_sandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
        except NotFoundError:
            pass

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int) -> tuple[int, bytes, bytes]:
        response = await self.runtime.exec_sync(api_pb2.ExecSyncRequest(
            container_id=container_id, cmd=cmd, timeout=timeout))
        return int(response.exit_code), bytes(response.stdout), bytes(response.stderr)

    async def exec_url(self, container_id: str, cmd: list[str], *, stdin: bool, stdout: bool, stderr: bool,
                       tty: bool) -> str:
        response = await self.runtime.exec(api_pb2.ExecRequest(
            container_id=container_id, cmd=cmd, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty))
        return str(response.url)

    async def attach_url(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> str:
        response = await self.runtime.attach(api_pb2.AttachRequest(
            container_id=container_id, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty))
        return str(response.url)

    async def port_forward_url(self, sandbox_id: str, ports: list[int]) -> str:
        response = await self.runtime.port_forward(api_pb2.PortForwardRequest(pod_sandbox_id=sandbox_id, port=ports))
        return str(response.url)

    async def version(self) -> tuple[str, str]:
        response = await self.runtime.version(api_pb2.VersionRequest())
        return str(response.runtime_name), str(response.runtime_version)

    async def conditions(self) -> dict[str, tuple[bool, str, str]]:
        """RuntimeReady / NetworkReady as the runtime reports them: type -> (ok, reason, message)."""
        response = await self.runtime.status(api_pb2.StatusRequest())
        return {c.type: (c.status, c.reason, c.message) for c in response.status.conditions}
