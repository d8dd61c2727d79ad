"""EndpointSlice and Endpoints controller: the pods behind each Service.

For every Service with a selector it keeps the slices labelled
`kubernetes.io/service-name=<svc>` (managed by `endpointslice-controller.k8s.io`)
and the legacy Endpoints object equal to the pods that match: addresses with
ready/serving/terminating conditions, node names and target references, and
ports resolved per pod (a named targetPort is looked up in each pod's
container ports). Not-ready pods are published as ready when the Service asks
for `publishNotReadyAddresses`. Slices hold at most 100 endpoints.
"""

from __future__ import annotations

from typing import Any

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.api.selectors import selector_from_spec
from controlplane.client import Client, Informer
from controlplane.controllers.base import Controller, delete_if_present

Obj = dict[str, Any]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
MAX_PER_SLICE = 100


def resolve_port(pod: Obj, target: Any, protocol: str) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def desired_endpoints(service: Obj, pods: list[Obj]) -> list[tuple[tuple[tuple[str, str, int], ...], Obj]]:
    """(ports, endpoint) pairs for every pod with an IP, grouped later by port set."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    result = []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ports = []
        for sp in spec.get("ports") or []:
            protocol = sp.get("protocol", "TCP")
            port = resolve_port(pod, sp.get("targetPort", sp.get("port")), protocol)
            if port is not None:
                ports.append((sp.get("name", ""), protocol, port))
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        ready = meta.is_pod_ready(pod)
        endpoint: Obj = {
            "addresses": [ip],
            "conditions": {"ready": (ready or publish_not_ready) and not terminating,
                           "serving": ready or publish_not_ready, "terminating": terminating},
            "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"],
                          "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
        }
        if (pod.get("spec") or {}).get("nodeName"):
            endpoint["nodeName"] = pod["spec"]["nodeName"]
        result.append((tuple(ports), endpoint))
    return result


class EndpointsController(Controller):
    name = "endpointslice"
    workers = 2

    def __init__(self, client: Client, shared: dict[str, Informer]) -> None:
        super().__init__()
        self.client = client
        self.services = shared.setdefault("services", Informer(client, resources.SERVICES))
        self.pods = shared.setdefault("pods", Informer(client, resources.PODS))
        self.slices = shared.setdefault("endpointslices", Informer(client, resources.ENDPOINTSLICES))
        self.informers = [self.services, self.pods, self.slices]
        self.slices.add_index("service", lambda s: [f"{s['metadata']['namespace']}/"
                                                    f"{(s['metadata'].get('labels') or {}).get(SERVICE_NAME, '')}"])
        self.services.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                  on_delete=self._enqueue)
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_updated, on_delete=self._pod)

    def _enqueue(self, svc: Obj) -> None:
        self.queue.add(meta.key_of(svc))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod(old)  # a relabelled pod leaves the old Service's endpoints
        self._pod(new)

    def _pod(self, pod: Obj) -> None:
        labels = pod["metadata"].get("labels") or {}
        for svc in self.services.list(pod["metadata"].get("namespace")):
            selector = (svc.get("spec") or {}).get("selector")
            if selector and selector_from_spec({"matchLabels": selector}).matches(labels):
                self._enqueue(svc)

    async def sync(self, key: str) -> float | None:
        namespace, name = key.split("/", 1)
        svc = self.services.get(namespace, name)
        existing = [s for s in self.slices.by_index("service", key)
                    if (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER]
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            for stale in existing:
                await self._delete(resources.ENDPOINTSLICES, stale)
            if svc is None:  # a Service without selector keeps its hand-written Endpoints
                await self._delete(resources.ENDPOINTS, {"metadata": {"name": name, "namespace": namespace}})
            return None
        selector = selector_from_spec({"matchLabels": svc["spec"]["selector"]})
        pods = [p for p in self.pods.list(namespace) if selector.matches(p["metadata"].get("labels"))]
        wanted = self._slices(svc, desired_endpoints(svc, pods))
        await self._reconcile_slices(svc, existing, wanted)
        await self._write_endpoints(svc, pods)
        return None

    def _slices(self, svc: Obj, endpoints: list[tuple[tuple[tuple[str, str, int], ...], Obj]]) -> list[Obj]:
        groups: dict[tuple[tuple[str, str, int], ...], list[Obj]] = {}
        for ports, endpoint in endpoints:
            groups.setdefault(ports, []).append(endpoint)
        if not groups:
            groups[()] = []
        slices = []
        for ports, members in sorted(groups.items()):
            members.sort(key=lambda e: e["addresses"][0])
            chunks = [members[i:i + MAX_PER_SLICE] for i in range(0, len(members), MAX_PER_SLICE)] or [[]]
            for chunk in chunks:
                slices.append({
                    "addressType": "IPv4", "endpoints": chunk,
                    "ports": [{"name": n, "protocol": p, "port": port} for n, p, port in ports],
                })
        return slices

    async def _reconcile_slices(self, svc: Obj, existing: list[Obj], wanted: list[Obj]) -> None:
        md = svc["metadata"]
        existing = sorted(existing, key=lambda s: s["metadata"]["name"])
        for index, body in enumerate(wanted):
            if index < len(existing):
                current = existing[index]
                if all(current.get(k) == body[k] for k in ("addressType", "endpoints", "ports")):
                    continue
                await self.client.update(resources.ENDPOINTSLICES, {**current, **body})
            else:
                await self.client.create(resources.ENDPOINTSLICES, {
                    "metadata": {"generateName": f"{md['name']}-", "namespace": md["namespace"],
                                 "labels": {SERVICE_NAME: md["name"], MANAGED_BY: CONTROLLER},
                                 "ownerReferences": [meta.owner_reference(svc)]}, **body})
        for stale in existing[len(wanted):]:
            await self._delete(resources.ENDPOINTSLICES, stale)

    async def _write_endpoints(self, svc: Obj, pods: list[Obj]) -> None:
        md = svc["metadata"]
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        ports: list[Obj] = []
        for port_set, endpoint in desired_endpoints(svc, pods):
            if endpoint["conditions"]["terminating"]:
                continue
            address = {"ip": endpoint["addresses"][0], "targetRef": endpoint["targetRef"]}
            if endpoint.get("nodeName"):
                address["nodeName"] = endpoint["nodeName"]
            (ready if endpoint["conditions"]["ready"] else not_ready).append(address)
            ports = [{"name": n, "protocol": p, "port": port} if n else {"protocol": p, "port": port}
                     for n, p, port in port_set]
        subsets = []
        if ready or not_ready:
            subset: Obj = {"ports": ports}
            if ready:
                subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
            if not_ready:
                subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
            subsets.append(subset)
        try:
            current = await self.client.get(resources.ENDPOINTS, md["name"], md["namespace"])
        except StatusError as exc:
            if exc.code != 404:
                raise
            await self.client.create(resources.ENDPOINTS, {"metadata": {"name": md["name"], "namespace":
                                                                        md["namespace"], "labels": dict(
                md.get("labels") or {})}, "subsets": subsets})
            return
        if (current.get("subsets") or []) != subsets:
            await self.client.update(resources.ENDPOINTS, {**current, "subsets": subsets})

    async def _delete(self, rt: Any, obj: Obj) -> None:
        await delete_if_present(self.client, rt, obj)
