"""The pods of this node: API watch in, one worker per pod, runtime relist (PLEG).

Pods come from an informer on `spec.nodeName=<node>`; every add, change or
deletion goes to that pod's worker. The relist (upstream's PLEG) lists the
runtime every second, wakes the worker of any pod whose containers changed
state, and gives a worker to runtime pods the API no longer knows, so that
their containers are stopped and removed — after an agent restart too. A pod
this agent has never started goes through admission first (`agent/admission.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from agent.admission import Rejection, admit
from agent.podworker import NodeServices, PodWorker
from agent.runtime import POD_UID
from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.client import Client, Informer

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class ClusterObjects:
    """ConfigMaps, Secrets and Services from informers; tokens from the TokenRequest API."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.configmaps = Informer(client, resources.CONFIGMAPS)
        self.secrets = Informer(client, resources.SECRETS)
        self.services = Informer(client, resources.SERVICES)
        self.informers = [self.configmaps, self.secrets, self.services]

    def configmap(self, namespace: str, name: str) -> Obj | None:
        return self.configmaps.get(namespace, name)

    def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get(namespace, name)

    def service_list(self) -> list[Obj]:
        return self.services.list()

    async def token(self, pod: Obj, service_account: str, audiences: list[str],
                    expiration_seconds: int) -> tuple[str, float]:
        md = pod["metadata"]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": audiences, "expirationSeconds": expiration_seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md["uid"]}}}
        answer = await self.client.create_subresource(resources.SERVICEACCOUNTS, service_account, "token", body,
                                                      md.get("namespace"))
        status = answer.get("status") or {}
        expires = dt.datetime.strptime(status["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.UTC).timestamp()
        return str(status["token"]), expires


class PodManager:
    def __init__(self, node: NodeServices, client: Client, node_name: str, relist_period: float = 1.0,
                 node_object: Callable[[], Obj | None] = lambda: None) -> None:
        self.node = node
        self.node_object = node_object
        self.client = client
        self.node_name = node_name
        self.relist_period = relist_period
        self.pods = Informer(client, resources.PODS, field_selector=f"spec.nodeName={node_name}")
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda _old, new: self._on_pod(new),
                              on_delete=self._on_pod_deleted)
        self.workers: dict[str, PodWorker] = {}
        self._runtime_states: dict[str, tuple[str, int]] = {}  # container/sandbox id -> (uid, state)
        self._task: asyncio.Task[None] | None = None
        self._in_runtime_at_start: set[str] = set()  # pods an earlier agent started: admitted then
        self._rejecting: set[str] = set()
        self._rejections: set[asyncio.Task[None]] = set()

    def _worker(self, uid: str, pod: Obj | None) -> PodWorker:
        worker = self.workers.get(uid)
        if worker is None or worker.finished.is_set():
            worker = PodWorker(self.node, uid, pod)
            self.workers[uid] = worker
            worker.start()
        return worker

    def _on_pod(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if uid not in self.workers and self._needs_admission(pod):
            if uid in self._rejecting:
                return  # its Failed status is on the way
            rejection = self._admit(pod)
            if rejection is not None:
                self._rejecting.add(uid)
                task = asyncio.create_task(self._reject(pod, rejection), name=f"reject-{uid}")
                self._rejections.add(task)
                task.add_done_callback(self._rejections.discard)
                return
        self._rejecting.discard(uid)
        self._worker(uid, pod).update(pod)

    def _needs_admission(self, pod: Obj) -> bool:
        """A pod no kubelet has started yet (no startTime, nothing of it in the runtime), not finished or leaving."""
        status = pod.get("status") or {}
        return not (status.get("startTime") or status.get("phase") in ("Succeeded", "Failed")
                    or pod["metadata"].get("deletionTimestamp") or pod["metadata"]["uid"] in self._in_runtime_at_start)

    def _admit(self, pod: Obj) -> Rejection | None:
        node = self.node_object()
        if node is None:
            return None  # not known yet: the scheduler's word stands, as before
        running = [w.pod for w in self.workers.values() if w.pod is not None and not w.finished.is_set()
                   and (w.pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return admit(pod, node, running)

    async def _reject(self, pod: Obj, rejection: Rejection) -> None:
        """Upstream's rejectPod: an event, and the pod Failed with the reason, never started."""
        md = pod["metadata"]
        message = f"Pod was rejected: {rejection.message}"
        log.info("pod %s/%s rejected: %s", md.get("namespace"), md["name"], message)
        try:
            await self.node.recorder.emit({"kind": "Pod", "apiVersion": "v1", **pod}, "Warning", rejection.reason,
                                          rejection.message)
            await self.client.patch(resources.PODS, md["name"], {"status": {
                "phase": "Failed", "reason": rejection.reason, "message": message}},
                md.get("namespace"), patch_type="merge", subresource="status")
        except Exception as exc:  # the API server may be away: decided again on the pod's next event
            if isinstance(exc, StatusError) and exc.code == 404:
                return  # deleted meanwhile
            log.warning("writing the rejection of %s: %s", md["name"], exc)
            self._rejecting.discard(md["uid"])

    def _on_pod_deleted(self, pod: Obj) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.update(None)

    def poke_namespace(self, namespace: str) -> None:
        for worker in self.workers.values():
            if worker.pod is not None and worker.pod["metadata"].get("namespace") == namespace:
                worker.poke()

    async def start(self) -> None:
        try:
            self._in_runtime_at_start = {sb.metadata.uid for sb in await self.node.runtime.list_sandboxes()}
        except Exception as exc:  # the runtime may be restarting: pods without startTime are admitted again
            log.warning("listing the runtime before admission: %s", exc)
        await self.pods.start()
        await self.pods.wait_synced()
        self._task = asyncio.create_task(self._relist_loop(), name="pleg")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pods.stop()
        await asyncio.gather(*(w.stop() for w in self.workers.values()))

    async def _relist_loop(self) -> None:
        while True:
            try:
                await self.relist()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the runtime may be restarting: keep going
                log.warning("runtime relist failed: %s", exc)
            for uid in [u for u, w in self.workers.items() if w.finished.is_set()]:
                del self.workers[uid]
            await asyncio.sleep(self.relist_period)

    async def relist(self) -> None:
        sandboxes, containers = await asyncio.gather(self.node.runtime.list_sandboxes(),
                                                     self.node.runtime.list_containers())
        states: dict[str, tuple[str, int]] = {}
        for sb in sandboxes:
            states[sb.id] = (sb.metadata.uid, int(sb.state))
        for c in containers:
            states[c.id] = (c.labels.get(POD_UID, ""), int(c.state) + 10)
        changed = {uid for cid, (uid, state) in states.items() if self._runtime_states.get(cid) != (uid, state)}
        changed |= {uid for cid, (uid, _s) in self._runtime_states.items() if cid not in states}
        self._runtime_states = states
        known = {p["metadata"]["uid"] for p in self.pods.list()}
        runtime_uids = {uid for uid, _s in states.values() if uid}
        for uid in runtime_uids - known:
            if uid not in self.workers:
                log.info("runtime pod %s is not in the API: removing it", uid)
                self._worker(uid, None)
        for uid in set(self.node.volumes.known_pod_uids()) - known - runtime_uids:
            if uid not in self.workers:
                self.node.volumes.teardown(uid)
        for uid in changed:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.poke()

    async def pod_by_name(self, namespace: str, name: str) -> Obj:
        pod = self.pods.get(namespace, name)
        if pod is None:
            raise StatusError(404, "NotFound", f'pods "{name}" not found')
        return pod
