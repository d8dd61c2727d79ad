"""The controller manager: every controller in one process, sharing informers.

One informer per resource type serves all controllers (a pod cache is kept
once, not once per controller), which is what client-go's shared informer
factory is for.
"""

from __future__ import annotations

import argparse
import asyncio

from controlplane.api import resources
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller
from controlplane.controllers.cronjob import CronJobController
from controlplane.controllers.daemonset import DaemonSetController
from controlplane.controllers.deployment import DeploymentController
from controlplane.controllers.endpoints import EndpointsController
from controlplane.controllers.garbagecollector import GarbageCollector
from controlplane.controllers.job import JobController
from controlplane.controllers.namespace import NamespaceController
from controlplane.controllers.nodeipam import NodeIPAMController
from controlplane.controllers.nodelifecycle import NodeLifecycleController
from controlplane.controllers.replicaset import ReplicaSetController
from controlplane.controllers.rootca import RootCAPublisher
from controlplane.controllers.serviceaccount import ServiceAccountController
from controlplane.controllers.statefulset import StatefulSetController

ALL = ("nodeipam", "nodelifecycle", "namespace", "serviceaccount", "root-ca-cert-publisher", "replicaset", "replicationcontroller", "deployment",
       "daemonset", "statefulset", "job", "cronjob", "endpointslice", "garbagecollector")


def build(client: Client, *, cluster_cidr: str = "10.244.0.0/16", node_mask: int = 24,
          enabled: tuple[str, ...] = ALL, node_monitor_grace_period: float = 40.0,
          default_toleration_seconds: float = 300.0, root_ca: bytes | None = None) -> list[Controller]:
    """The enabled controllers; the root CA publisher needs `root_ca` (upstream's --root-ca-file) and is
    left out without it."""
    shared: dict[str, Informer] = {}
    makers = {
        "nodeipam": lambda: NodeIPAMController(client, cluster_cidr, node_mask),
        "nodelifecycle": lambda: NodeLifecycleController(
            client, shared, grace_period=node_monitor_grace_period,
            default_toleration_seconds=default_toleration_seconds),
        "namespace": lambda: NamespaceController(client),
        "replicaset": lambda: ReplicaSetController(client, shared),
        "replicationcontroller": lambda: ReplicaSetController(client, shared, resources.REPLICATIONCONTROLLERS),
        "deployment": lambda: DeploymentController(client, shared),
        "serviceaccount": lambda: ServiceAccountController(client, shared),
        "root-ca-cert-publisher": lambda: RootCAPublisher(client, shared, root_ca or b""),
        "endpointslice": lambda: EndpointsController(client, shared),
        "job": lambda: JobController(client, shared),
        "daemonset": lambda: DaemonSetController(client, shared),
        "cronjob": lambda: CronJobController(client, shared),
        "statefulset": lambda: StatefulSetController(client, shared),
        "garbagecollector": lambda: GarbageCollector(client, shared),
    }
    return [makers[name]() for name in ALL
            if name in enabled and (name != "root-ca-cert-publisher" or root_ca)]


def add_node_lifecycle_arguments(parser: argparse.ArgumentParser) -> None:
    """Upstream's flags for how fast a silent node is declared NotReady and its pods are moved."""
    parser.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                        help="seconds without a heartbeat before a node is NotReady")
    parser.add_argument("--default-not-ready-toleration-seconds", type=float, default=300.0,
                        help="how long pods without their own toleration stay on a NotReady node")


async def run_controller_manager(client: Client, *, stop: asyncio.Event, cluster_cidr: str = "10.244.0.0/16",
                                 node_mask: int = 24, enabled: tuple[str, ...] = ALL,
                                 node_monitor_grace_period: float = 40.0,
                                 default_toleration_seconds: float = 300.0, root_ca: bytes | None = None) -> None:
    controllers = build(client, cluster_cidr=cluster_cidr, node_mask=node_mask, enabled=enabled,
                        node_monitor_grace_period=node_monitor_grace_period,
                        default_toleration_seconds=default_toleration_seconds, root_ca=root_ca)
    await asyncio.gather(*(c.run(stop) for c in controllers))
