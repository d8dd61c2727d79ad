"""The whole system, as a user meets it: a two-node lab, the real kubectl, traffic across nodes.

`pyk8s lab up` starts the control plane, and per node a network namespace with
its own containerd, agent and proxy. The tests deploy with kubectl and check
what a user would: pods spread and Running, Services reachable by ClusterIP and
NodePort from every node and every pod and answering from pods on both nodes,
pod-to-pod traffic across nodes, logs, scaling, a DaemonSet on every node, a
rolling update that no polling client notices, and a node whose agent dies
having its pods moved. Each proxy mode this kernel supports gets its own lab.
The lab is removed afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import cluster, network
from lab.cluster import LabState
from tests.conftest import kubectl_binary
from tests.helpers import poll

ROOT = Path(__file__).resolve().parents[2]
# Node failure is noticed after the grace period; pods without their own toleration move after the second.
# Inside pods: busybox's wget crashes with -T (Debian's busybox-static 1.35), so `timeout` bounds it instead.
POD_FETCH = ["timeout", "5", "wget", "-q", "-O", "-"]
FAST_FAILOVER = ["--node-monitor-grace-period", "12", "--default-not-ready-toleration-seconds", "3"]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, containerd)"
    for tool in ("containerd", "docker-registry", "iptables-restore", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup-platform.sh installs it)"
    return None


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request: pytest.FixtureRequest) -> Iterator[LabState]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    name = "e" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=4))
    data_dir = Path(f"/tmp/pyk8s-e2e-{name}")
    try:
        yield cluster.up(data_dir, 2, name=name, proxy_mode=request.param,
                         subnet=network.free_subnet("10.97"), timeout=240, server_args=FAST_FAILOVER)
    finally:
        cluster.down(data_dir, name=name)
        shutil.rmtree(data_dir, ignore_errors=True)


def kubectl(state: LabState, *args: str, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run([kubectl_binary(), "--kubeconfig", str(state.kubeconfig), *args], capture_output=True,
                            text=True, input=input, timeout=200)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def in_node(state: LabState, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={state.net.netns_path(node)}", "--", *argv], capture_output=True,
                          text=True, timeout=30)


def fetch(state: LabState, node: str, url: str) -> str | None:
    answer = in_node(state, node, "wget", "-q", "-T", "3", "-O", "-", url)
    return answer.stdout.strip() if answer.returncode == 0 else None


def pods(state: LabState, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(kubectl(state, "get", "pods", "-l", selector, "-o", "json"))["items"]
    return items


def web_manifest(name: str, replicas: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: pyk8s.local/web:1
        ports: [{{containerPort: 8080, name: http}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
        lifecycle: {{preStop: {{exec: {{command: [sleep, "3"]}}}}}}
      - name: shell
        image: pyk8s.local/busybox:1
        command: [sleep, "3600"]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: http}}]
"""


def test_demo_workload_across_nodes(lab: LabState) -> None:
    kubectl(lab, "apply", "-f", str(ROOT / "examples" / "demo.yaml"))
    kubectl(lab, "wait", "--for=condition=Available", "deployment/web", "--timeout=180s")
    found = pods(lab, "app=web")
    names = {p["metadata"]["name"] for p in found}
    assert len(found) == 3 and all(p["status"]["phase"] == "Running" for p in found)
    assert {p["spec"]["nodeName"] for p in found} == {"node1", "node2"}, "the scheduler spreads the replicas"
    table = kubectl(lab, "get", "pods", "-l", "app=web")
    assert "1/1" in table and "Running" in table

    cluster_ip = kubectl(lab, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    seen: set[str] = set()

    def every_pod_answers() -> bool:
        for node in ("node1", "node2"):
            for target in (f"http://{cluster_ip}/", f"http://{lab.net.node_ip(1)}:30080/",
                           f"http://{lab.net.node_ip(2)}:30080/"):
                answer = fetch(lab, node, target)
                if answer:
                    seen.add(answer)
        return names <= seen

    poll(every_pod_answers, timeout=90, interval=0.2)
    served = "".join(kubectl(lab, "logs", name) for name in names)
    assert "GET / HTTP/1.1" in served, served

    kubectl(lab, "scale", "deployment", "web", "--replicas=5")
    poll(lambda: kubectl(lab, "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}") == "5")
    kubectl(lab, "delete", "-f", str(ROOT / "examples" / "demo.yaml"), "--wait=true", "--timeout=120s")
    poll(lambda: kubectl(lab, "get", "pods", "-l", "app=web", "-o", "name") == "", timeout=120)


def test_pod_to_pod_and_service_from_every_pod(lab: LabState) -> None:
    kubectl(lab, "apply", "-f", "-", input=web_manifest("mesh", 4))
    kubectl(lab, "wait", "--for=condition=Available", "deployment/mesh", "--timeout=180s")
    found = pods(lab, "app=mesh")
    assert {p["spec"]["nodeName"] for p in found} == {"node1", "node2"}
    names = {p["metadata"]["name"] for p in found}
    cluster_ip = kubectl(lab, "get", "svc", "mesh", "-o", "jsonpath={.spec.clusterIP}")
    for source in found:
        for target in found:
            if target["spec"]["nodeName"] != source["spec"]["nodeName"]:
                out = kubectl(lab, "exec", source["metadata"]["name"], "-c", "shell", "--", *POD_FETCH,
                              f"http://{target['status']['podIP']}:8080/")
                assert out.strip() == target["metadata"]["name"], "pod to pod across nodes, without NAT"
        seen: set[str] = set()

        def all_replicas(pod_name: str = source["metadata"]["name"], seen: set[str] = seen) -> bool:
            out = kubectl(lab, "exec", pod_name, "-c", "shell", "--", *POD_FETCH, f"http://{cluster_ip}/",
                          check=False)
            if out.strip():
                seen.add(out.strip())
            return names <= seen

        poll(all_replicas, timeout=60, interval=0.1)
    kubectl(lab, "delete", "-f", "-", input=web_manifest("mesh", 4))


def test_daemonset_lands_on_every_node(lab: LabState) -> None:
    manifest = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agentd}
spec:
  selector: {matchLabels: {app: agentd}}
  template:
    metadata: {labels: {app: agentd}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: c, image: pyk8s.local/busybox:1, command: [sleep, "3600"]}]
"""
    kubectl(lab, "apply", "-f", "-", input=manifest)
    poll(lambda: len([p for p in pods(lab, "app=agentd") if p["status"].get("phase") == "Running"]) == 2)
    assert sorted(p["spec"]["nodeName"] for p in pods(lab, "app=agentd")) == ["node1", "node2"]
    kubectl(lab, "delete", "-f", "-", input=manifest)


def test_rolling_update_drops_no_request(lab: LabState) -> None:
    kubectl(lab, "apply", "-f", "-", input=web_manifest("roll", 3))
    kubectl(lab, "wait", "--for=condition=Available", "deployment/roll", "--timeout=180s")
    cluster_ip = kubectl(lab, "get", "svc", "roll", "-o", "jsonpath={.spec.clusterIP}")
    poll(lambda: fetch(lab, "node1", f"http://{cluster_ip}/") is not None, timeout=60, interval=0.2)
    before = {p["metadata"]["name"] for p in pods(lab, "app=roll")}
    failures: list[str] = []
    answers: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            answer = fetch(lab, "node1", f"http://{cluster_ip}/")
            (answers if answer else failures).append(answer or time.strftime("%H:%M:%S"))
            time.sleep(0.1)

    worker = threading.Thread(target=client)
    worker.start()
    try:
        kubectl(lab, "rollout", "restart", "deployment/roll")
        kubectl(lab, "rollout", "status", "deployment/roll", "--timeout=180s")
        time.sleep(2)
    finally:
        stop.set()
        worker.join()
    after = {p["metadata"]["name"] for p in pods(lab, "app=roll") if not p["metadata"].get("deletionTimestamp")}
    assert after and not (after & before), "every replica was replaced"
    assert not failures, f"{len(failures)} of {len(failures) + len(answers)} requests failed: {failures}"
    assert set(answers) & after, "the new replicas serve"
    kubectl(lab, "delete", "-f", "-", input=web_manifest("roll", 3))


def test_node_failure_moves_pods_and_endpoints(lab: LabState) -> None:
    kubectl(lab, "apply", "-f", "-", input=web_manifest("move", 2))
    kubectl(lab, "wait", "--for=condition=Available", "deployment/move", "--timeout=180s")
    poll(lambda: {p["spec"]["nodeName"] for p in pods(lab, "app=move")} == {"node1", "node2"}, timeout=30)
    on_node2 = {p["metadata"]["name"] for p in pods(lab, "app=move") if p["spec"]["nodeName"] == "node2"}
    agent = next(r for r in lab.records if r.label == "agent-node2").alive()
    assert agent is not None
    agent.kill()  # the node goes silent; its containers keep running, as after a kubelet crash
    poll(lambda: "NotReady" in kubectl(lab, "get", "node", "node2"), timeout=90)

    def moved() -> bool:
        live = [p for p in pods(lab, "app=move") if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and all(p["spec"].get("nodeName") == "node1" and p["status"].get("phase") == "Running"
                                      for p in live)

    poll(moved, timeout=120)
    cluster_ip = kubectl(lab, "get", "svc", "move", "-o", "jsonpath={.spec.clusterIP}")

    def endpoints_on_node1_only() -> bool:
        slices = json.loads(kubectl(lab, "get", "endpointslices", "-l", "kubernetes.io/service-name=move",
                                    "-o", "json"))["items"]
        ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
        return len(ready) == 2 and all(e.get("nodeName") == "node1" for e in ready)

    poll(endpoints_on_node1_only, timeout=60)
    answers = {fetch(lab, "node1", f"http://{cluster_ip}/") for _ in range(20)}
    assert not (answers & on_node2), "no request reaches the dead node's pods"
    assert None not in answers


def test_kubectl_workflow_in_a_namespace(lab: LabState) -> None:
    """What a user does day to day: create, expose, set image, undo, scale, delete a pod, delete it all."""
    ns = ["-n", "flows"]
    kubectl(lab, "create", "namespace", "flows")
    kubectl(lab, *ns, "create", "deployment", "web", "--image=pyk8s.local/web:1", "--replicas=3", "--port=8080")
    kubectl(lab, *ns, "expose", "deployment", "web", "--port=80", "--target-port=8080")
    kubectl(lab, *ns, "rollout", "status", "deployment/web", "--timeout=180s")
    cluster_ip = kubectl(lab, *ns, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

    def version_served(expected: str) -> bool:
        answer = in_node(lab, "node1", "wget", "-S", "-q", "-T", "3", "-O", "-", f"http://{cluster_ip}/")
        return answer.returncode == 0 and f"X-Web-Version: {expected}" in answer.stderr

    def images() -> set[str]:
        live = [p for p in json.loads(kubectl(lab, *ns, "get", "pods", "-o", "json"))["items"]
                if not p["metadata"].get("deletionTimestamp")]
        return {c["image"] for p in live for c in p["spec"]["containers"]}

    poll(lambda: version_served("1"), timeout=60, interval=0.2)
    kubectl(lab, *ns, "set", "image", "deployment/web", "web=pyk8s.local/web:2")
    kubectl(lab, *ns, "rollout", "status", "deployment/web", "--timeout=180s")
    poll(lambda: images() == {"pyk8s.local/web:2"}, timeout=60)
    poll(lambda: all(version_served("2") for _ in range(5)), timeout=60, interval=0.2)
    assert "2 " in kubectl(lab, *ns, "rollout", "history", "deployment/web")

    kubectl(lab, *ns, "rollout", "undo", "deployment/web")
    kubectl(lab, *ns, "rollout", "status", "deployment/web", "--timeout=180s")
    poll(lambda: images() == {"pyk8s.local/web:1"}, timeout=60)
    poll(lambda: all(version_served("1") for _ in range(5)), timeout=60, interval=0.2)

    kubectl(lab, *ns, "scale", "deployment/web", "--replicas=5")
    poll(lambda: kubectl(lab, *ns, "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}") == "5")
    kubectl(lab, *ns, "scale", "deployment/web", "--replicas=2")
    poll(lambda: len(pods_in(lab, "flows")) == 2, timeout=90)

    victim = sorted(pods_in(lab, "flows"))[0]
    kubectl(lab, *ns, "delete", "pod", victim, "--wait=false")
    poll(lambda: victim not in pods_in(lab, "flows") and len(pods_in(lab, "flows")) == 2
         and kubectl(lab, *ns, "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}") == "2",
         timeout=90)

    kubectl(lab, "delete", "namespace", "flows", "--timeout=120s")
    poll(lambda: "flows" not in kubectl(lab, "get", "namespaces", "-o", "name"), timeout=120)
    assert kubectl(lab, "get", "pods", "-A", "-o", "name", "--field-selector", "metadata.namespace=flows") == ""


def pods_in(state: LabState, namespace: str) -> set[str]:
    items = json.loads(kubectl(state, "-n", namespace, "get", "pods", "-o", "json"))["items"]
    return {p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}


def test_python_client_drives_the_lab(lab: LabState) -> None:
    """The official `kubernetes` client: deploy, watch to Running, logs, exec, scale, cascading delete."""
    from kubernetes import client, config, watch
    from kubernetes.stream import stream

    with config.new_client_from_config(str(lab.kubeconfig)) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        assert sorted(n.metadata.name for n in core.list_node().items) == ["node1", "node2"]
        core.create_namespace({"metadata": {"name": "pyclient"}})
        labels = {"app": "py"}
        apps.create_namespaced_deployment("pyclient", {
            "metadata": {"name": "py"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                    "name": "web", "image": "pyk8s.local/web:1", "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}}})
        core.create_namespaced_service("pyclient", {
            "metadata": {"name": "py"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})

        ready: set[str] = set()
        for event in watch.Watch().stream(core.list_namespaced_pod, "pyclient", label_selector="app=py",
                                          timeout_seconds=180):
            pod = event["object"]
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                ready.add(pod.metadata.name)
            if len(ready) == 2:
                break
        assert len(ready) == 2, "both replicas became Ready within the watch"

        service = core.read_namespaced_service("py", "pyclient")
        seen: set[str] = set()

        def both_answer() -> bool:
            answer = fetch(lab, "node2", f"http://{service.spec.cluster_ip}/")
            if answer:
                seen.add(answer)
            return ready <= seen

        poll(both_answer, timeout=60, interval=0.2)
        name = sorted(ready)[0]
        assert "GET / HTTP/1.1" in core.read_namespaced_pod_log(name, "pyclient", container="web")
        out = stream(core.connect_get_namespaced_pod_exec, name, "pyclient", container="web",
                     command=["hostname"], stderr=True, stdin=False, stdout=True, tty=False)
        assert out.strip() == name

        apps.patch_namespaced_deployment_scale("py", "pyclient", {"spec": {"replicas": 3}})
        poll(lambda: apps.read_namespaced_deployment("py", "pyclient").status.ready_replicas == 3, timeout=120)
        apps.delete_namespaced_deployment("py", "pyclient", propagation_policy="Foreground")
        poll(lambda: not core.list_namespaced_pod("pyclient").items
             and not apps.list_namespaced_replica_set("pyclient").items, timeout=120)
        core.delete_namespace("pyclient")
        poll(lambda: "pyclient" not in {n.metadata.name for n in core.list_namespace().items}, timeout=120)
