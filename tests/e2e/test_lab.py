"""The whole system, as a user meets it: a two-node lab, the real kubectl, traffic across nodes.

`pyk8s lab up` starts the control plane, and per node a network namespace with
its own containerd, agent and proxy. The test deploys the demo workload with
kubectl and checks what a user would: pods spread and Running, the Service
reachable by ClusterIP and NodePort from every node and answering from pods on
both nodes, logs through the API server, scaling. The lab is removed
afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import cluster
from lab.cluster import LabState

ROOT = Path(__file__).resolve().parents[2]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, containerd)"
    for tool in ("containerd", "kubectl", "docker-registry", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup-platform.sh installs it)"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    name = "e" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=4))
    data_dir = Path(f"/tmp/pyk8s-e2e-{name}")
    try:
        state = cluster.up(data_dir, 2, name=name, subnet=f"10.97.{random.randint(1, 250)}.0/24", timeout=240)
        yield state
    finally:
        cluster.down(data_dir, name=name)
        shutil.rmtree(data_dir, ignore_errors=True)


def kubectl(state: LabState, *args: str, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run(["kubectl", "--kubeconfig", str(state.kubeconfig), *args], capture_output=True,
                            text=True, input=input, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def in_node(state: LabState, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={state.net.netns_path(node)}", "--", *argv], capture_output=True,
                          text=True, timeout=30)


def poll(check, timeout: float = 120.0, interval: float = 1.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(interval)


def test_demo_workload_across_nodes(lab: LabState) -> None:
    kubectl(lab, "apply", "-f", str(ROOT / "examples" / "demo.yaml"))
    kubectl(lab, "wait", "--for=condition=Available", "deployment/web", "--timeout=180s")
    pods = json.loads(kubectl(lab, "get", "pods", "-l", "app=web", "-o", "json"))["items"]
    names = {p["metadata"]["name"] for p in pods}
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} == {"node1", "node2"}, "the scheduler spreads the replicas"
    table = kubectl(lab, "get", "pods", "-l", "app=web")
    assert "1/1" in table and "Running" in table

    cluster_ip = kubectl(lab, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    seen: set[str] = set()

    def every_pod_answers() -> bool:
        for node in ("node1", "node2"):
            for target in (f"http://{cluster_ip}/", f"http://{lab.net.node_ip(1)}:30080/"):
                answer = in_node(lab, node, "wget", "-q", "-T", "3", "-O", "-", target)
                if answer.returncode == 0:
                    seen.add(answer.stdout.strip())
        return names <= seen

    poll(every_pod_answers, timeout=90, interval=0.2)
    served = "".join(kubectl(lab, "logs", name) for name in names)
    assert "GET / HTTP/1.1" in served, served

    kubectl(lab, "scale", "deployment", "web", "--replicas=5")
    kubectl(lab, "wait", "--for=condition=Available", "deployment/web", "--timeout=180s")
    poll(lambda: kubectl(lab, "get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}") == "5")
    kubectl(lab, "delete", "-f", str(ROOT / "examples" / "demo.yaml"), "--wait=true", "--timeout=120s")
    poll(lambda: kubectl(lab, "get", "pods", "-l", "app=web", "-o", "name") == "", timeout=120)
