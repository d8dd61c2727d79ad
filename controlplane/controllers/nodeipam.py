"""Node IPAM: give every Node a `spec.podCIDR` carved from the cluster CIDR.

The agents build their CNI config and host-gw routes from these ranges, so two
nodes must never share one. The allocator keeps no state of its own: at start
(and after any restart) it re-reads the ranges the Nodes already hold, so an
allocation survives restarts, and a deleted Node's range is free again as soon
as the Node is gone. One key at a time through the work queue serializes
allocations within a controller manager; leader election keeps it to one.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from controlplane.api import resources
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller

log = logging.getLogger(__name__)


class CIDRExhaustedError(Exception):
    pass


class CIDRAllocator:
    """Hands out fixed-size subnets of one cluster CIDR, lowest free first."""

    def __init__(self, cluster_cidr: str, node_mask: int = 24) -> None:
        self.cluster = ipaddress.ip_network(cluster_cidr)
        if node_mask < self.cluster.prefixlen or node_mask > self.cluster.max_prefixlen:
            raise ValueError(f"node mask /{node_mask} does not fit in {cluster_cidr}")
        self.node_mask = node_mask
        self._used: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()

    def occupy(self, cidr: str) -> bool:
        """Record a range already held by a node; False if it is not one of ours."""
        net = ipaddress.ip_network(cidr, strict=False)
        if net.prefixlen != self.node_mask or not net.subnet_of(self.cluster):  # type: ignore[arg-type]
            return False
        self._used.add(net)
        return True

    def release(self, cidr: str) -> None:
        self._used.discard(ipaddress.ip_network(cidr, strict=False))

    def allocate(self) -> str:
        for candidate in self.cluster.subnets(new_prefix=self.node_mask):
            if candidate not in self._used:
                self._used.add(candidate)
                return str(candidate)
        raise CIDRExhaustedError(f"no /{self.node_mask} left in {self.cluster}")


class NodeIPAMController(Controller):
    """Watches Nodes and patches `spec.podCIDR`/`spec.podCIDRs` onto those without one."""

    name = "nodeipam"

    def __init__(self, client: Client, cluster_cidr: str, node_mask: int = 24) -> None:
        super().__init__()
        self.client = client
        self.cluster_cidr = cluster_cidr
        self.node_mask = node_mask
        self.nodes = Informer(client, resources.NODES)
        self.informers = [self.nodes]
        # Ranges patched onto nodes whose update the informer has not shown yet: without
        # them the next allocation, read from a stale cache, could hand out the same range.
        self._assumed: dict[str, str] = {}
        self.nodes.add_handler(on_add=self._enqueue, on_update=lambda _old, new: self._enqueue(new),
                               on_delete=self._enqueue)

    def _enqueue(self, node: dict[str, Any]) -> None:
        self.queue.add(node["metadata"]["name"])

    def _allocator_from_cache(self) -> CIDRAllocator:
        allocator = CIDRAllocator(self.cluster_cidr, self.node_mask)
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            cidr = node.get("spec", {}).get("podCIDR")
            if cidr:
                self._assumed.pop(name, None)  # the cache has caught up
                if not allocator.occupy(cidr):
                    log.warning("node %s holds podCIDR %s outside %s", name, cidr, self.cluster_cidr)
        for name in [n for n in self._assumed if self.nodes.get(None, n) is None]:
            del self._assumed[name]  # the node is gone, and so is its range
        for cidr in self._assumed.values():
            allocator.occupy(cidr)
        return allocator

    async def sync(self, key: str) -> float | None:
        name = key
        node = self.nodes.get(None, name)
        if node is None or node.get("spec", {}).get("podCIDR") or name in self._assumed:
            return None
        cidr = self._allocator_from_cache().allocate()
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                 "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        await self.client.patch(resources.NODES, name, patch, patch_type="merge")
        self._assumed[name] = cidr
        log.info("allocated podCIDR %s to node %s", cidr, name)
        return None
