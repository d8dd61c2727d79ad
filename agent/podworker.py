"""One worker per pod: drive the runtime towards the pod's spec, report what it finds.

Each pass (`sync`) is level-triggered: it reads a fresh runtime snapshot,
decides the next steps (sandbox, init containers in order, containers,
restarts with back-off, liveness kills, termination) and writes the pod's
status when it changed. Passes are triggered by API changes, runtime events
(the PLEG relist), probe results and timers, and never run concurrently for
one pod. Nothing is remembered that the runtime cannot tell again, except
back-off timers and probe results, which upstream also loses on restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from agent import containerspec as cs
from agent import podstatus, safepath
from agent.images import ImageManager, ImagePullError
from agent.logs import tail_text
from agent.probes import ContainerProbes, Prober, ProbeState, resolve_port, start_probes
from agent.runtime import EXITED, RUNNING, Container, PodRuntime, Runtime
from agent.volumes import ObjectSource, VolumeError, VolumeManager
from controlplane.api import resources
from controlplane.api.errors import StatusError
from controlplane.client import Client
from controlplane.client.events import EventRecorder
from cri import api_pb2
from cri.errors import CRIError

log = logging.getLogger(__name__)
Obj = dict[str, Any]
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0  # a container that ran 10 minutes starts its back-off afresh
TERMINATION_MESSAGE_LIMIT = 4096


@dataclass
class NodeServices:
    """Everything a pod worker needs from the agent, shared by all workers."""

    client: Client
    runtime: Runtime
    images: ImageManager
    volumes: VolumeManager
    source: ObjectSource
    services: Callable[[], list[Obj]]
    recorder: EventRecorder
    prober: Prober
    ctx: cs.NodeContext
    sync_frequency: float = 10.0


@dataclass
class _Backoff:
    delay: float
    restarted_at: float


class PodWorker:
    def __init__(self, node: NodeServices, uid: str, pod: Obj | None) -> None:
        self.node = node
        self.uid = uid
        self.pod = pod
        self.view = podstatus.PodView()
        self._backoff: dict[str, _Backoff] = {}
        self._wake = asyncio.Event()
        self._next_wake: float | None = None
        self._last_status: Obj | None = None
        self._termination_messages: dict[str, str] = {}
        self._reported: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self._pod_ip = ""

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"pod-worker-{self.uid}")

    def update(self, pod: Obj | None) -> None:
        self.pod = pod
        self.poke()

    def poke(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop the worker only (agent shutdown): the pod's containers keep running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for probes in self.view.probes.values():
            await probes.stop()

    async def _loop(self) -> None:
        while True:
            timeout = self.node.sync_frequency
            if self._next_wake is not None:
                timeout = max(min(timeout, self._next_wake - time.monotonic()), 0.05)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self._next_wake = None
            try:
                done = await self.sync()
            except asyncio.CancelledError:
                raise
            except (CRIError, StatusError, OSError, aiohttp.ClientError) as exc:
                log.warning("pod %s: sync failed, retrying: %s", self._name(), exc)
                self._schedule(1.0)
                continue
            except Exception:
                log.exception("pod %s: sync failed", self._name())
                self._schedule(5.0)
                continue
            if done:
                self.finished.set()
                return

    def _schedule(self, seconds: float) -> None:
        at = time.monotonic() + seconds
        if self._next_wake is None or at < self._next_wake:
            self._next_wake = at

    def _name(self) -> str:
        if self.pod is None:
            return self.uid
        md = self.pod["metadata"]
        return f"{md.get('namespace')}/{md['name']}"

    async def _event(self, kind: str, reason: str, message: str) -> None:
        if self.pod is not None:
            pod = {"kind": "Pod", "apiVersion": "v1", **self.pod}
            await self.node.recorder.emit(pod, kind, reason, message)

    # -- one pass ------------------------------------------------------------------------

    async def sync(self) -> bool:
        """One reconciliation pass; True when the pod is gone and the worker can end."""
        pod = self.pod
        runtime = await self.node.runtime.pod(self.uid)
        if pod is None:
            await self._kill_all(runtime, grace=None)
            await self._remove_all(runtime)
            self.node.volumes.teardown(self.uid)
            for probes in self.view.probes.values():
                await probes.stop()
            return True
        md = pod["metadata"]
        phase = (pod.get("status") or {}).get("phase")
        if md.get("deletionTimestamp"):
            await self._terminate(pod, runtime)
            return False
        if phase in ("Succeeded", "Failed"):
            if any(c.state == RUNNING for c in runtime.containers) or any(s.ready for s in runtime.sandboxes):
                await self._kill_all(runtime, grace=None)
            return False
        await self._reconcile(pod, runtime)
        runtime = await self.node.runtime.pod(self.uid)
        await self._collect_termination_messages(pod, runtime)
        status = podstatus.compute(pod, runtime, self.view, node_ip=self.node.ctx.node_ip,
                                   termination_messages=self._termination_messages)
        await self._write_status(status)
        if status["phase"] in ("Succeeded", "Failed"):
            self.pod = {**pod, "status": status}
            await self._kill_all(runtime, grace=None)
        return False

    async def _reconcile(self, pod: Obj, runtime: PodRuntime) -> None:
        spec = pod.get("spec") or {}
        self.view.waiting.clear()
        try:
            volume_paths = await self.node.volumes.setup(pod)
        except VolumeError as exc:
            await self._once("FailedMount", "Warning", str(exc))
            self._schedule(2.0)
            return
        self._reported.discard(("FailedMount", ""))
        sandbox = runtime.sandbox
        if sandbox is None or not sandbox.ready:
            if sandbox is not None and not spec.get("hostNetwork"):
                await self._event("Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            await self._kill_all(runtime, grace=None)
            attempt = sandbox.attempt + 1 if sandbox is not None else 0
            config = cs.sandbox_config(self.node.ctx, pod, attempt)
            os.makedirs(config.log_directory, exist_ok=True)
            try:
                await self.node.runtime.run_sandbox(config)
            except CRIError as exc:
                await self._event("Warning", "FailedCreatePodSandBox",
                                  f"Failed to create pod sandbox: {exc.details}")
                self._schedule(5.0)
                return
            runtime = await self.node.runtime.pod(self.uid)
            sandbox = runtime.sandbox
            if sandbox is None:
                return
        self._pod_ip = self.node.ctx.node_ip if spec.get("hostNetwork") else sandbox.ip
        sandbox_config = cs.sandbox_config(self.node.ctx, pod, sandbox.attempt)
        self._write_etc_hosts(pod, self._pod_ip)
        current = [c for c in runtime.containers if c.sandbox_id == sandbox.id]
        policy = spec.get("restartPolicy", "Always")

        for init in spec.get("initContainers") or []:
            latest = next((c for c in current if c.name == init["name"]), None)
            if latest is not None and latest.state == EXITED and latest.exit_code == 0:
                continue
            if latest is not None and latest.state == RUNNING:
                return
            if latest is not None and latest.state == EXITED:
                if policy == "Never":
                    self.view.failed_init = True
                    return
                if not await self._restart_allowed(pod, init, latest):
                    return
            await self._start(pod, init, runtime, sandbox.id, sandbox_config, volume_paths)
            return

        for container in spec.get("containers") or []:
            name = container["name"]
            latest = next((c for c in current if c.name == name), None)
            if latest is not None and latest.state == RUNNING:
                probes = self.view.probes.get(name)
                if probes is None or probes.container_id != latest.id:
                    self._watch_probes(container, latest)
                    continue
                if not probes.live:
                    failed = "startup" if not probes.is_started else "liveness"
                    await self._event("Normal", "Killing",
                                      f"Container {name} failed {failed} probe, will be restarted")
                    await self._stop_container(pod, container, latest, self._grace(pod, None))
                    await probes.stop()
                    self.view.probes.pop(name, None)
                    self.poke()
                elif latest.spec_hash and latest.spec_hash != cs.container_hash(container):
                    await self._event("Normal", "Killing",
                                      f"Container {name} definition changed, will be restarted")
                    await self._stop_container(pod, container, latest, self._grace(pod, None))
                    self.poke()
                continue
            if latest is not None and latest.state == EXITED:
                if policy == "Never" or (policy == "OnFailure" and latest.exit_code == 0):
                    continue
                if not await self._restart_allowed(pod, container, latest):
                    continue
            elif latest is not None:  # created but never started: an agent crash between the two calls
                await self.node.runtime.remove_container(latest.id)
            await self._start(pod, container, runtime, sandbox.id, sandbox_config, volume_paths)

    async def _restart_allowed(self, pod: Obj, container: Obj, latest: Container) -> bool:
        """Apply CrashLoopBackOff: True if the container may be started again now."""
        name = container["name"]
        entry = self._backoff.get(name)
        ran = (latest.finished_at - latest.started_at) / 1e9 if latest.started_at else 0
        if entry is not None and ran >= BACKOFF_RESET_AFTER:
            entry = None
            self._backoff.pop(name, None)
        if entry is None:
            return True
        finished = latest.finished_at / 1e9 if latest.finished_at else time.time()
        remaining = finished + entry.delay - time.time()
        if remaining <= 0:
            return True
        md = pod["metadata"]
        message = (f"back-off {int(entry.delay)}s restarting failed container={name} "
                   f"pod={md['name']}_{md.get('namespace')}({md['uid']})")
        self.view.waiting[name] = podstatus.Waiting("CrashLoopBackOff", message)
        await self._event("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                                f"{md['name']}_{md.get('namespace')}({md['uid']})")
        self._schedule(remaining)
        return False

    def _note_restart(self, name: str, restart_count: int) -> None:
        if restart_count == 0:
            return
        entry = self._backoff.get(name)
        delay = BACKOFF_INITIAL if entry is None else min(entry.delay * 2, BACKOFF_MAX)
        self._backoff[name] = _Backoff(delay, time.time())

    async def _start(self, pod: Obj, container: Obj, runtime: PodRuntime, sandbox_id: str,
                     sandbox_config: api_pb2.PodSandboxConfig, volume_paths: dict[str, Path]) -> None:
        name = container["name"]
        image = container.get("image", "")
        try:
            pulled = await self._ensure_image(container)
        except ImagePullError as exc:
            self.view.waiting[name] = podstatus.Waiting(exc.reason, exc.message)
            if exc.reason == "ErrImagePull":
                await self._event("Warning", "Failed", exc.message)
                await self._event("Warning", "Failed", "Error: ErrImagePull")
            else:
                await self._event("Normal", "BackOff", f'Back-off pulling image "{image}"')
            self._schedule(3.0)
            return
        if not pulled:
            await self._once(f"present:{image}:{name}", "Normal",
                             f'Container image "{image}" already present on machine', reason="Pulled")
        latest = runtime.latest(name)
        restart_count = latest.restart_count + 1 if latest is not None else 0
        try:
            env = cs.container_env(self.node.ctx, pod, container, self.node.source, self.node.services())
            extra = self._extra_mounts(pod, container, restart_count)
            mounts = cs.container_mounts(pod, container, volume_paths, extra, env=env,
                                         subpaths_dir=self._pod_dir() / "volume-subpaths")
        except (cs.ContainerConfigError, VolumeError, safepath.UnsafePathError) as exc:
            self.view.waiting[name] = podstatus.Waiting("CreateContainerConfigError", str(exc))
            await self._event("Warning", "Failed", f"Error: {exc}")
            self._schedule(5.0)
            return
        config = cs.container_config(self.node.ctx, pod, container, restart_count=restart_count, env=env,
                                     mounts=mounts)
        try:
            container_id = await self.node.runtime.create_container(sandbox_id, config, sandbox_config)
        except CRIError as exc:
            self.view.waiting[name] = podstatus.Waiting("CreateContainerError", exc.details)
            await self._event("Warning", "Failed", f"Error: {exc.details}")
            self._schedule(5.0)
            return
        await self._event("Normal", "Created", f"Created container {name}")
        self._note_restart(name, restart_count)
        try:
            await self.node.runtime.start_container(container_id)
        except CRIError as exc:
            await self._event("Warning", "Failed", f"Error: {exc.details}")
            self._schedule(1.0)
            return
        await self._event("Normal", "Started", f"Started container {name}")
        if container.get("lifecycle", {}).get("postStart"):
            await self._run_hook(pod, container, container_id, container["lifecycle"]["postStart"],
                                 "PostStart", budget=30)

    async def _ensure_image(self, container: Obj) -> bool:
        """Make the image present per the pull policy; True if it was pulled now."""
        image = container.get("image", "")
        policy = container.get("imagePullPolicy", "IfNotPresent")
        present = None if policy == "Always" else await self.node.images.present(image)
        if present:
            return False
        if policy != "Never" and not self.node.images.in_backoff(image):
            await self._event("Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        _ref, pulled = await self.node.images.ensure(image, policy)
        if pulled:
            took = time.monotonic() - started
            await self._event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s')
        return pulled

    async def _once(self, key: str, kind: str, message: str, reason: str | None = None) -> None:
        """An event reported once per distinct message, not on every pass."""
        if (key, message) in self._reported:
            return
        self._reported.add((key, message))
        await self._event(kind, reason or key, message)

    # -- per-pod files -----------------------------------------------------------------------

    def _pod_dir(self) -> Path:
        return self.node.volumes.pod_dir(self.uid)

    def _write_etc_hosts(self, pod: Obj, pod_ip: str) -> None:
        spec = pod.get("spec") or {}
        path = self._pod_dir() / "etc-hosts"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes",
                 "fe00::2\tip6-allrouters"]
        if pod_ip and not spec.get("hostNetwork"):
            hostname = cs.hostname_of(pod)
            if spec.get("subdomain"):
                ns = pod["metadata"].get("namespace") or "default"
                fqdn = f"{hostname}.{spec['subdomain']}.{ns}.svc.{self.node.ctx.cluster_domain}"
                lines.append(f"{pod_ip}\t{fqdn}\t{hostname}")
            else:
                lines.append(f"{pod_ip}\t{hostname}")
        for alias in spec.get("hostAliases") or []:
            lines.append(f"{alias.get('ip')}\t" + "\t".join(alias.get("hostnames") or []))
        text = "\n".join(lines) + "\n"
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(path)

    def _termination_log(self, name: str, restart_count: int) -> Path:
        return self._pod_dir() / "containers" / name / f"termination-log-{restart_count}"

    def _extra_mounts(self, pod: Obj, container: Obj, restart_count: int) -> list[api_pb2.Mount]:
        extra = []
        if not (pod.get("spec") or {}).get("hostNetwork"):
            extra.append(api_pb2.Mount(container_path="/etc/hosts", host_path=str(self._pod_dir() / "etc-hosts")))
        path = cs.termination_message_path(container)
        if path:
            log_file = self._termination_log(safepath.check_name(container["name"], "container name"),
                                             restart_count)
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.touch()
            log_file.chmod(0o666)
            extra.append(api_pb2.Mount(container_path=path, host_path=str(log_file)))
        return extra

    async def _collect_termination_messages(self, pod: Obj, runtime: PodRuntime) -> None:
        specs = {c["name"]: c for c in ((pod.get("spec") or {}).get("initContainers") or []) +
                 ((pod.get("spec") or {}).get("containers") or [])}
        for c in runtime.containers:
            if c.state != EXITED or c.id in self._termination_messages or c.name not in specs:
                continue
            message = ""
            log_file = self._termination_log(c.name, c.restart_count)
            with contextlib.suppress(OSError):
                message = log_file.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
            if not message and specs[c.name].get("terminationMessagePolicy") == "FallbackToLogsOnError" and \
                    c.exit_code != 0 and c.log_path:
                message = tail_text(Path(c.log_path), lines=80, limit=2048)
            self._termination_messages[c.id] = message

    # -- probes ----------------------------------------------------------------------------

    def _watch_probes(self, container: Obj, latest: Container) -> None:
        name = container["name"]
        old = self.view.probes.pop(name, None)
        if old is not None:
            asyncio.create_task(old.stop())

        def notify(kind: str, state: ProbeState, changed: bool) -> None:
            if not state.result or (kind == "startup" and not state.result):
                label = {"liveness": "Liveness", "readiness": "Readiness", "startup": "Startup"}[kind]
                asyncio.create_task(self._event("Warning", "Unhealthy",
                                                f"{label} probe failed: {state.last_message}"))
            if changed:
                self.poke()

        if any(container.get(f"{k}Probe") for k in ("startup", "liveness", "readiness")):
            self.view.probes[name] = start_probes(self.node.prober, container, latest.id, lambda: self._pod_ip,
                                                  notify)
        else:
            self.view.probes[name] = ContainerProbes(latest.id)

    # -- stopping ----------------------------------------------------------------------------

    def _grace(self, pod: Obj | None, override: int | None) -> int:
        if override is not None:
            return override
        if pod is None:
            return 2
        md = pod.get("metadata") or {}
        if md.get("deletionGracePeriodSeconds") is not None:
            return int(md["deletionGracePeriodSeconds"])
        return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    async def _run_hook(self, pod: Obj, container: Obj, container_id: str, hook: Obj, what: str,
                        budget: int) -> None:
        try:
            if "exec" in hook:
                code, out, err = await self.node.runtime.exec_sync(container_id, list(hook["exec"].get("command") or []),
                                                                   budget)
                if code != 0:
                    raise RuntimeError(f"command exited with {code}: {(out + err).decode(errors='replace')}")
            elif "httpGet" in hook:
                spec = hook["httpGet"]
                port = resolve_port(spec.get("port"), container)
                url = f"{spec.get('scheme', 'HTTP').lower()}://{spec.get('host') or self._pod_ip}:{port}" \
                      f"{spec.get('path', '/')}"
                async with aiohttp.ClientSession() as session, session.get(
                        url, timeout=aiohttp.ClientTimeout(total=budget)) as response:
                    await response.read()
            elif "sleep" in hook:
                await asyncio.sleep(min(int(hook["sleep"].get("seconds", 0)), budget))
        except Exception as exc:
            await self._event("Warning", f"Failed{what}Hook",
                              f"{what} hook for container {container['name']} failed: {exc}")

    async def _stop_container(self, pod: Obj | None, container: Obj | None, c: Container, grace: int) -> None:
        started = time.monotonic()
        if pod is not None and container is not None:
            pre_stop = (container.get("lifecycle") or {}).get("preStop")
            if pre_stop and c.state == RUNNING:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._run_hook(pod, container, c.id, pre_stop, "PreStop", grace),
                                           max(grace, 1))
        remaining = max(int(grace - (time.monotonic() - started)), 0) if grace else 0
        await self.node.runtime.stop_container(c.id, remaining)

    async def _kill_all(self, runtime: PodRuntime, grace: int | None) -> None:
        pod = self.pod
        specs = {c["name"]: c for c in ((pod or {}).get("spec") or {}).get("containers") or []}
        running = [c for c in runtime.containers if c.state == RUNNING]
        timeout = self._grace(pod, grace)
        if running:
            for c in running:
                if c.name in specs:
                    await self._event("Normal", "Killing", f"Stopping container {c.name}")
            await asyncio.gather(*(self._stop_container(pod, specs.get(c.name), c, timeout) for c in running))
        for sandbox in runtime.sandboxes:
            if sandbox.ready:
                await self.node.runtime.stop_sandbox(sandbox.id)
        for probes in self.view.probes.values():
            await probes.stop()
        self.view.probes.clear()

    async def _remove_all(self, runtime: PodRuntime) -> None:
        for c in runtime.containers:
            await self.node.runtime.remove_container(c.id)
        for sandbox in runtime.sandboxes:
            await self.node.runtime.remove_sandbox(sandbox.id)

    async def _terminate(self, pod: Obj, runtime: PodRuntime) -> None:
        """Graceful deletion: preStop, SIGTERM, the grace period, SIGKILL; final status; then the API delete."""
        await self._kill_all(runtime, grace=None)
        runtime = await self.node.runtime.pod(self.uid)
        await self._collect_termination_messages(pod, runtime)
        status = podstatus.compute(pod, runtime, self.view, node_ip=self.node.ctx.node_ip,
                                   termination_messages=self._termination_messages)
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            status["phase"] = pod["status"]["phase"]
        await self._write_status(status)
        md = pod["metadata"]
        try:
            await self.node.client.delete(resources.PODS, md["name"], md.get("namespace"), grace_period_seconds=0,
                                          preconditions={"uid": md["uid"]})
        except StatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _write_status(self, status: Obj) -> None:
        if self.pod is None:
            return
        comparable = _without_times(status)
        if self._last_status is not None and comparable == self._last_status:
            return
        if _without_times(self.pod.get("status") or {}) == comparable:
            self._last_status = comparable
            return
        md = self.pod["metadata"]
        try:
            updated = await self.node.client.patch(resources.PODS, md["name"], {"status": status},
                                                   md.get("namespace"), patch_type="merge", subresource="status")
        except StatusError as exc:
            if exc.code == 404:
                return
            raise
        self._last_status = comparable
        if updated.get("metadata", {}).get("uid") == self.uid and _newer(updated, self.pod):
            self.pod = updated


def _newer(candidate: Obj, current: Obj | None) -> bool:
    """Whether `candidate` is a later version of the pod than `current` (resourceVersion is one global revision).

    The pod informer usually delivers the watch event of a status write before
    the write's own answer: the worker then already holds that version, shared
    with the informer's cache, and keeping the answer too would hold a second
    copy of every pod (and could replace a newer version with an older one).
    """
    if current is None:
        return True
    try:
        return int(candidate["metadata"]["resourceVersion"]) > int(current["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True


def _without_times(status: Obj) -> Obj:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k not in ("lastTransitionTime", "lastProbeTime")}
                         for c in status.get("conditions") or []]
    return out
