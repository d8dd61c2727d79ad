"""The agent as a whole: containerd, the Node, the pod network, the pods and the kubelet port.

Start-up order matters and mirrors upstream's: a runtime that answers, the
Node registered (so the node IPAM controller can give it a podCIDR), the CNI
config for that podCIDR, then the pods. Stopping the agent stops its workers
and its server, never the pods: containers belong to the runtime, and the next
agent adopts them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

import psutil
import yaml

from agent.apiclient import NodeClient
from agent.config import AgentConfig
from agent.containerd import ContainerdPaths, ContainerdSupervisor, render_config
from agent.containerspec import NodeContext
from agent.images import ImageManager
from agent.node import NodeStatusReporter, capacity
from agent.podmanager import ClusterObjects, PodManager
from agent.podnetwork import PodNetwork
from agent.podworker import NodeServices
from agent.probes import Prober
from agent.runtime import Runtime
from agent.server import KubeletServer, ensure_serving_cert
from agent.volumes import VolumeManager
from controlplane.api import resources
from controlplane.client import Informer
from controlplane.client.events import EventRecorder
from controlplane.privatefiles import private_dir, tighten
from cri import api_pb2

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def cluster_ca(kubeconfig: Any) -> bytes | None:
    """The CA the kubeconfig trusts: the kubelet port accepts client certificates it signed."""
    with open(kubeconfig) as handle:
        config = yaml.safe_load(handle) or {}
    for cluster in config.get("clusters") or []:
        data = (cluster.get("cluster") or {}).get("certificate-authority-data")
        if data:
            return base64.b64decode(data)
        path = (cluster.get("cluster") or {}).get("certificate-authority")
        if path:
            with open(path, "rb") as ca:
                return ca.read()
    return None


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.supervisor: ContainerdSupervisor | None = None
        self.runtime: Runtime | None = None
        self.pod_manager: PodManager | None = None
        self.network: PodNetwork | None = None

    async def _start_runtime(self) -> str:
        cfg = self.config
        if cfg.container_runtime_endpoint:
            return cfg.container_runtime_endpoint
        paths = ContainerdPaths(cfg.containerd_dir)
        self.supervisor = ContainerdSupervisor(paths, render_config(
            paths, sandbox_image=cfg.sandbox_image, registry_mirrors=cfg.registry_mirrors,
            cni_bin_dir=cfg.cni_bin_dir))
        await self.supervisor.start()
        return paths.endpoint

    async def _wait_runtime(self, runtime: Runtime, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                name, version = await runtime.version()
                log.info("runtime %s %s", name, version)
                return
            except Exception as exc:
                log.warning("waiting for the container runtime: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        # 0700: its pods' volumes, logs and keys are nobody else's (not tightened below: volume modes are the pods')
        private_dir(cfg.data_dir)
        tighten(cfg.pki_dir)
        endpoint = await self._start_runtime()
        runtime = self.runtime = Runtime(endpoint, cfg.node_name)
        client = NodeClient.from_kubeconfig(cfg.kubeconfig)
        cni_conf_dir = (ContainerdPaths(cfg.containerd_dir).cni_conf_dir if self.supervisor
                        else cfg.data_dir / "cni-conf")
        network = self.network = PodNetwork(cni_conf_dir, cfg.bridge_name, cfg.cni_ipam_dir, cfg.node_name,
                                            manage_routes=cfg.manage_routes)
        objects = ClusterObjects(client)
        nodes = Informer(client, resources.NODES)
        tasks: list[asyncio.Task[Any]] = []
        server: KubeletServer | None = None
        try:
            await self._wait_runtime(runtime, stop)
            for informer in objects.informers:
                await informer.start()

            async def runtime_info() -> tuple[str, dict[str, tuple[bool, str, str]]]:
                try:
                    name, version = await runtime.version()
                    return f"{name}://{version}", await runtime.conditions()
                except Exception as exc:
                    return "", {"RuntimeReady": (False, "RuntimeDown", str(exc))}

            async def images() -> list[Obj]:
                response = await runtime.images.list_images(api_pb2.ListImagesRequest())
                found = sorted(response.images, key=lambda i: -i.size)[:50]
                return [{"names": list(i.repo_digests) + list(i.repo_tags), "sizeBytes": i.size} for i in found]

            reporter = NodeStatusReporter(
                client, node_name=cfg.node_name, node_ip=cfg.node_ip, data_dir=cfg.data_dir, max_pods=cfg.max_pods,
                kubelet_port=cfg.kubelet_port, labels=cfg.node_labels, taints=cfg.register_with_taints,
                runtime_info=runtime_info, network_ready=network.ready, images=images,
                status_frequency=cfg.node_status_update_frequency, report_frequency=cfg.node_status_report_frequency,
                lease_duration=cfg.node_lease_duration_seconds)
            tasks.append(asyncio.create_task(reporter.run(stop), name="node-status"))
            await reporter.registered.wait()

            async def sync_routes() -> None:
                try:  # `ip` runs synchronously: not on the event loop's thread
                    await asyncio.to_thread(network.sync_routes, nodes.list())
                except Exception as exc:
                    log.warning("syncing pod routes: %s", exc)

            async def masquerade() -> None:
                try:
                    await asyncio.to_thread(network.ensure_masquerade, cfg.cluster_cidr)
                except Exception as exc:
                    log.warning("pod masquerade rule: %s", exc)

            def on_nodes_changed(*_args: Any) -> None:
                own = nodes.get(None, cfg.node_name)
                cidr = ((own or {}).get("spec") or {}).get("podCIDR")
                if cidr and network.configure(cidr):
                    tasks.append(asyncio.create_task(reporter.update_status(force=True)))
                    tasks.append(asyncio.create_task(masquerade()))
                tasks.append(asyncio.create_task(sync_routes()))

            nodes.add_handler(on_nodes_changed, on_nodes_changed, on_nodes_changed)
            await nodes.start()

            memory = psutil.virtual_memory().total
            ctx = NodeContext(node_name=cfg.node_name, node_ip=cfg.node_ip, cluster_dns=cfg.cluster_dns,
                              cluster_domain=cfg.cluster_domain, cgroup_root=cfg.cgroup_root,
                              pod_logs_dir=cfg.pod_logs_dir, allocatable=capacity(cfg.max_pods, cfg.data_dir),
                              memory_capacity=memory)
            prober = Prober(runtime.exec_sync)
            services = NodeServices(
                client=client, runtime=runtime, images=ImageManager(runtime.images),
                volumes=VolumeManager(cfg.pods_dir, objects, lambda: ctx.allocatable), source=objects,
                services=objects.service_list, recorder=EventRecorder(client, "kubelet", cfg.node_name),
                prober=prober, ctx=ctx, sync_frequency=cfg.sync_frequency)
            manager = self.pod_manager = PodManager(services, client, cfg.node_name, cfg.relist_period,
                                                    node_object=lambda: nodes.get(None, cfg.node_name))
            for informer in (objects.configmaps, objects.secrets):
                informer.add_handler(on_update=lambda _o, new: manager.poke_namespace(
                    new["metadata"].get("namespace", "")))

            cert, key = ensure_serving_cert(cfg.pki_dir, cfg.node_name, cfg.node_ip)
            server = KubeletServer(pods=lambda: manager.pods.list(), pod=manager.pods.get, runtime_pod=runtime.pod,
                                   streams=runtime,
                                   client_ca=cluster_ca(cfg.kubeconfig), cert=cert, key=key,
                                   bind_address=cfg.bind_address, port=cfg.kubelet_port)
            await server.start()
            await manager.start()
            log.info("agent for node %s is running", cfg.node_name)
            await stop.wait()
        finally:
            if self.pod_manager is not None:
                await self.pod_manager.stop()
            if server is not None:
                await server.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await nodes.stop()
            for informer in objects.informers:
                await informer.stop()
            await client.close()
            await runtime.close()
            if self.supervisor is not None:
                await self.supervisor.stop()
