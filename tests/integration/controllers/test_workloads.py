"""Workloads (Deployments, Services, Jobs, node failure) with the real API server, scheduler and controllers.

There is no kubelet in these tests: a small task plays it, marking every bound
pod Running and Ready (and finishing graceful deletions), so the rollout
logic sees the same signals it would from real nodes. The flows are driven with
the real kubectl, as a user would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.api import meta, resources
from controlplane.api.errors import StatusError
from controlplane.apiserver.server import APIServer
from controlplane.client import Client
from controlplane.controllers.manager import run_controller_manager
from controlplane.scheduler.scheduler import run_scheduler
from tests.conftest import kubectl
from tests.helpers import eventually

LIVE_NODES = {"n1", "n2"}  # nodes whose (played) kubelet still heartbeats


async def play_kubelet(client: Client, stop: asyncio.Event) -> None:
    addresses: dict[str, str] = {}
    while not stop.is_set():
        for name in list(LIVE_NODES):
            lease = {"metadata": {"name": name, "namespace": "kube-node-lease"},
                     "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": meta.now_micro()}}
            try:
                current = await client.get(resources.LEASES, name, "kube-node-lease")
                await client.update(resources.LEASES, {**current, "spec": lease["spec"]})
            except StatusError:
                await client.create(resources.LEASES, lease)
        for pod in (await client.list(resources.PODS))["items"]:
            md, spec = pod["metadata"], pod["spec"]
            if spec.get("nodeName") and spec["nodeName"] not in LIVE_NODES:
                continue  # that node's kubelet is dead: nothing answers for its pods
            try:
                if md.get("deletionTimestamp") and spec.get("nodeName"):
                    await client.delete(resources.PODS, md["name"], md["namespace"], grace_period_seconds=0)
                elif spec.get("nodeName") and "job-name" in (md.get("labels") or {}) and \
                        pod["status"].get("phase") not in ("Succeeded", "Failed"):
                    # Job pods run to completion; an annotation tells this played kubelet the exit code.
                    failed = (md.get("annotations") or {}).get("test.pyk8s/exit") == "1"
                    await client.patch(resources.PODS, md["name"], {"status": {
                        "phase": "Failed" if failed else "Succeeded"}}, md["namespace"], subresource="status")
                elif spec.get("nodeName") and not meta.is_pod_ready(pod):
                    now = meta.now_rfc3339()
                    ip = addresses.setdefault(md["uid"], f"10.244.0.{len(addresses) + 10}")
                    status = {"phase": "Running", "podIP": ip, "startTime": now, "conditions": [
                        {"type": t, "status": "True", "lastTransitionTime": now}
                        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}
                    await client.patch(resources.PODS, md["name"], {"status": status}, md["namespace"],
                                       subresource="status")
            except StatusError:
                pass  # raced with a controller; the next round sees the new state
        await asyncio.sleep(0.2)


@pytest.fixture
async def cluster(api_server: APIServer) -> AsyncIterator[Client]:
    stop = asyncio.Event()
    client = Client.from_kubeconfig(api_server.admin_kubeconfig)
    LIVE_NODES.clear()
    LIVE_NODES.update({"n1", "n2"})
    for name in ("n1", "n2"):
        node = await client.create(resources.NODES, {"metadata": {"name": name}})
        node["status"] = {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                          "conditions": [{"type": "Ready", "status": "True"}]}
        await client.update(resources.NODES, node, subresource="status")
    tasks = [asyncio.create_task(run_controller_manager(client, stop=stop, node_monitor_grace_period=3.0,
                                                        default_toleration_seconds=1.0)),
             asyncio.create_task(run_scheduler(client, stop=stop)),
             asyncio.create_task(play_kubelet(client, stop))]
    try:
        yield client
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()


async def k(kubeconfig: Path, *args: str, check: bool = True) -> str:
    result = await asyncio.to_thread(kubectl, kubeconfig, *args, check=check)
    return result.stdout


async def pods(client: Client) -> list[dict[str, Any]]:
    return [p for p in (await client.list(resources.PODS, "default"))["items"]
            if not p["metadata"].get("deletionTimestamp")]


async def test_rollout_undo_scale_heal_and_cascade(cluster: Client, kubeconfig: Path) -> None:
    client = cluster
    await k(kubeconfig, "create", "deployment", "web", "--image=pyk8s.local/web:1", "--replicas=3")
    assert "successfully rolled out" in await k(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    first = await pods(client)
    assert len(first) == 3 and {p["spec"]["nodeName"] for p in first} == {"n1", "n2"}

    await k(kubeconfig, "set", "image", "deployment/web", "web=pyk8s.local/web:2")
    assert "successfully rolled out" in await k(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    images = {p["spec"]["containers"][0]["image"] for p in await pods(client)}
    assert images == {"pyk8s.local/web:2"}
    history = await k(kubeconfig, "rollout", "history", "deployment/web")
    assert "1" in history and "2" in history

    await k(kubeconfig, "rollout", "undo", "deployment/web")
    assert "successfully rolled out" in await k(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")

    async def back_to_v1() -> bool:
        current = await pods(client)
        return len(current) == 3 and {p["spec"]["containers"][0]["image"] for p in current} == {"pyk8s.local/web:1"}

    await eventually(back_to_v1)
    deploy = json.loads(await k(kubeconfig, "get", "deployment", "web", "-o", "json"))
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    [v1_set] = [rs for rs in (await client.list(resources.REPLICASETS, "default"))["items"]
                if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "pyk8s.local/web:1"]
    assert v1_set["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert v1_set["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert {c["type"]: c["reason"] for c in deploy["status"]["conditions"]} == {
        "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}

    await k(kubeconfig, "scale", "deployment/web", "--replicas=5")

    async def five() -> bool:
        return len(await pods(client)) == 5

    await eventually(five)
    await k(kubeconfig, "scale", "deployment/web", "--replicas=2")

    async def two() -> bool:
        return len(await pods(client)) == 2

    await eventually(two)
    victim = (await pods(client))[0]["metadata"]["name"]
    await k(kubeconfig, "delete", "pod", victim)

    async def healed() -> bool:
        current = await pods(client)
        return len(current) == 2 and victim not in {p["metadata"]["name"] for p in current}

    await eventually(healed)

    await k(kubeconfig, "delete", "deployment", "web")

    async def all_gone() -> bool:
        rs = (await client.list(resources.REPLICASETS, "default"))["items"]
        return not rs and not (await client.list(resources.PODS, "default"))["items"]

    await eventually(all_gone)


async def test_orphan_deletion_keeps_the_replicaset(cluster: Client, kubeconfig: Path) -> None:
    await k(kubeconfig, "create", "deployment", "keep", "--image=pyk8s.local/web:1", "--replicas=1")
    await k(kubeconfig, "rollout", "status", "deployment/keep", "--timeout=60s")
    await k(kubeconfig, "delete", "deployment", "keep", "--cascade=orphan")

    async def orphaned() -> bool:
        rs = (await cluster.list(resources.REPLICASETS, "default"))["items"]
        return len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")

    await eventually(orphaned)
    assert len(await pods(cluster)) == 1


async def test_service_endpoints_follow_ready_pods(cluster: Client, kubeconfig: Path) -> None:
    await k(kubeconfig, "create", "deployment", "api", "--image=pyk8s.local/web:1", "--replicas=2", "--port=8080")
    await k(kubeconfig, "expose", "deployment", "api", "--port=80", "--target-port=8080")
    await k(kubeconfig, "rollout", "status", "deployment/api", "--timeout=60s")

    async def two_ready() -> bool:
        slices = (await cluster.list(resources.ENDPOINTSLICES, "default",
                                     label_selector="kubernetes.io/service-name=api"))["items"]
        endpoints = [e for s in slices for e in s["endpoints"] if e["conditions"]["ready"]]
        return len(endpoints) == 2 and all(s["ports"] == [{"name": "", "protocol": "TCP", "port": 8080}]
                                           for s in slices)

    await eventually(two_ready)
    legacy = await cluster.get(resources.ENDPOINTS, "api", "default")
    assert len(legacy["subsets"][0]["addresses"]) == 2
    described = await k(kubeconfig, "get", "endpointslices", "-l", "kubernetes.io/service-name=api")
    assert "8080" in described and "IPv4" in described

    sa = await cluster.get(resources.SERVICEACCOUNTS, "default", "default")
    assert sa["metadata"]["name"] == "default"

    await k(kubeconfig, "delete", "service", "api")

    async def cleaned() -> bool:
        slices = (await cluster.list(resources.ENDPOINTSLICES, "default",
                                     label_selector="kubernetes.io/service-name=api"))["items"]
        try:
            await cluster.get(resources.ENDPOINTS, "api", "default")
            return False
        except StatusError:
            return not slices

    await eventually(cleaned)


async def test_silent_node_is_tainted_and_its_pods_move(cluster: Client, kubeconfig: Path) -> None:
    await k(kubeconfig, "create", "deployment", "mover", "--image=pyk8s.local/web:1", "--replicas=2")
    await k(kubeconfig, "rollout", "status", "deployment/mover", "--timeout=60s")
    LIVE_NODES.discard("n2")  # n2's kubelet stops: no more lease renewals

    async def n2_unknown() -> bool:
        node = await cluster.get(resources.NODES, "n2")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        return ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints

    await eventually(n2_unknown)

    async def all_on_n1() -> bool:
        live = await pods(cluster)
        return len(live) == 2 and all(p["spec"].get("nodeName") == "n1" and meta.is_pod_ready(p) for p in live)

    await eventually(all_on_n1)


def job(name: str, *, completions: int, parallelism: int, fail: bool = False, **extra: Any) -> dict[str, Any]:
    annotations = {"test.pyk8s/exit": "1" if fail else "0"}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {
        "completions": completions, "parallelism": parallelism, **extra,
        "template": {"metadata": {"annotations": annotations}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "pyk8s.local/busybox:1"}]}}}}


async def test_jobs_complete_fail_and_expire(cluster: Client, kubeconfig: Path) -> None:
    await cluster.create(resources.JOBS, job("ok", completions=3, parallelism=2))
    await cluster.create(resources.JOBS, job("bad", completions=1, parallelism=1, fail=True, backoffLimit=1))
    await cluster.create(resources.JOBS, job("brief", completions=1, parallelism=1, ttlSecondsAfterFinished=0))

    def condition(obj: dict[str, Any]) -> tuple[str, str] | None:
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("status") == "True":
                return cond["type"], cond.get("reason", "")
        return None

    async def ok_done() -> bool:
        return condition(await cluster.get(resources.JOBS, "ok", "default")) == ("Complete", "")

    await eventually(ok_done)
    ok = await cluster.get(resources.JOBS, "ok", "default")
    assert ok["status"]["succeeded"] == 3 and ok["status"].get("completionTime")

    async def bad_failed() -> bool:
        return condition(await cluster.get(resources.JOBS, "bad", "default")) == ("Failed", "BackoffLimitExceeded")

    await eventually(bad_failed)
    assert (await cluster.get(resources.JOBS, "bad", "default"))["status"]["failed"] == 2

    async def brief_gone() -> bool:
        return not [j for j in (await cluster.list(resources.JOBS, "default"))["items"]
                    if j["metadata"]["name"] == "brief"]

    await eventually(brief_gone)
    table = await k(kubeconfig, "get", "jobs")
    assert "ok" in table and "Complete" in table and "3/3" in table


async def test_daemonset_lands_one_pod_per_node_and_follows_new_nodes(cluster: Client, kubeconfig: Path) -> None:
    await cluster.create(resources.DAEMONSETS, {"metadata": {"name": "agent", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
            "containers": [{"name": "c", "image": "pyk8s.local/busybox:1"}]}}}})

    async def placed(expected: set[str]) -> bool:
        live = [p for p in await pods(cluster) if (p["metadata"].get("labels") or {}).get("app") == "agent"]
        return sorted(p["spec"].get("nodeName") or "" for p in live) == sorted(expected)

    await eventually(lambda: placed({"n1", "n2"}))
    LIVE_NODES.add("n3")
    node = await cluster.create(resources.NODES, {"metadata": {"name": "n3"}})
    node["status"] = {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                      "conditions": [{"type": "Ready", "status": "True"}]}
    await cluster.update(resources.NODES, node, subresource="status")
    await eventually(lambda: placed({"n1", "n2", "n3"}))

    async def counted() -> bool:
        status = (await cluster.get(resources.DAEMONSETS, "agent", "default")).get("status") or {}
        return status.get("desiredNumberScheduled") == 3 and status.get("numberReady") == 3

    await eventually(counted)
    table = await k(kubeconfig, "get", "daemonset", "agent")
    assert table.split("\n")[1].split()[1:4] == ["3", "3", "3"]


async def test_cronjob_runs_the_due_schedule_once(cluster: Client, kubeconfig: Path) -> None:
    created = await cluster.create(resources.CRONJOBS, {"metadata": {"name": "tick", "namespace": "default"},
                                                        "spec": {"schedule": "* * * * *",
                                                                 "concurrencyPolicy": "Forbid",
                                                                 "jobTemplate": job("x", completions=1,
                                                                                    parallelism=1)}})
    # Pretend the last run was three minutes ago, so one run is due now (missed runs collapse).
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await cluster.update(resources.CRONJOBS, {**created, "status": {"lastScheduleTime": past}}, subresource="status")

    async def one_job_done() -> bool:
        jobs = [j for j in (await cluster.list(resources.JOBS, "default"))["items"]
                if j["metadata"]["name"].startswith("tick-")]
        status = (await cluster.get(resources.CRONJOBS, "tick", "default")).get("status") or {}
        return len(jobs) == 1 and bool(status.get("lastSuccessfulTime"))

    await eventually(one_job_done)
    cj = await cluster.get(resources.CRONJOBS, "tick", "default")
    assert cj["status"]["lastScheduleTime"] > past
    listed = await k(kubeconfig, "get", "cronjobs")
    assert "tick" in listed and "* * * * *" in listed


async def test_statefulset_orders_creation_and_scale_down(cluster: Client, kubeconfig: Path) -> None:
    await cluster.create(resources.STATEFULSETS, {"metadata": {"name": "db", "namespace": "default"}, "spec": {
        "serviceName": "db", "replicas": 3, "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
            "containers": [{"name": "c", "image": "pyk8s.local/busybox:1"}]}}}})
    out_of_order: list[str] = []

    async def three_ready() -> bool:
        live = {p["metadata"]["name"]: p for p in await pods(cluster)
                if (p["metadata"].get("labels") or {}).get("app") == "db"}
        for name in live:
            # OrderedReady: whenever db-i exists, every lower ordinal is already Ready.
            lower = [f"db-{i}" for i in range(int(name.rsplit("-", 1)[1]))]
            if not all(n in live and meta.is_pod_ready(live[n]) for n in lower):
                out_of_order.append(name)
        return len(live) == 3 and all(meta.is_pod_ready(p) for p in live.values())

    await eventually(three_ready, interval=0.02)
    assert out_of_order == []
    db1 = await cluster.get(resources.PODS, "db-1", "default")
    assert db1["spec"]["hostname"] == "db-1" and db1["spec"]["subdomain"] == "db"
    await k(kubeconfig, "scale", "statefulset", "db", "--replicas=1")

    async def only_db0() -> bool:
        names = sorted(p["metadata"]["name"] for p in await pods(cluster)
                       if (p["metadata"].get("labels") or {}).get("app") == "db")
        return names == ["db-0"]

    await eventually(only_db0)
    status = (await cluster.get(resources.STATEFULSETS, "db", "default"))["status"]
    assert status["updateRevision"].startswith("db-")


def python_client_flow(kubeconfig: Path) -> dict[str, Any]:
    from kubernetes import client as k8s
    from kubernetes import config

    with config.new_client_from_config(str(kubeconfig)) as api:
        apps = k8s.AppsV1Api(api)
        apps.create_namespaced_deployment("default", {
            "metadata": {"name": "py"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "py"}},
                                                 "template": {"metadata": {"labels": {"app": "py"}}, "spec": {
                                                     "containers": [{"name": "c", "image": "pyk8s.local/web:1"}]}}}})
        apps.patch_namespaced_deployment_scale("py", "default", {"spec": {"replicas": 3}})
        apps.patch_namespaced_deployment("py", "default", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "pyk8s.local/web:2"}]}}}})
        return {"generation": apps.read_namespaced_deployment("py", "default").metadata.generation}


async def test_official_python_client_drives_a_rollout(cluster: Client, kubeconfig: Path) -> None:
    result = await asyncio.to_thread(python_client_flow, kubeconfig)
    assert result["generation"] == 3

    async def rolled_out() -> bool:
        deploy = await cluster.get(resources.DEPLOYMENTS, "py", "default")
        status = deploy.get("status") or {}
        live = [p for p in await pods(cluster) if (p["metadata"].get("labels") or {}).get("app") == "py"]
        return (status.get("updatedReplicas") == 3 and status.get("availableReplicas") == 3
                and status.get("observedGeneration") == 3 and len(live) == 3
                and {p["spec"]["containers"][0]["image"] for p in live} == {"pyk8s.local/web:2"})

    await eventually(rolled_out)
