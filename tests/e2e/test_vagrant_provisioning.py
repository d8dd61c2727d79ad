"""The Vagrant provisioning scripts, run for real in lab nodes instead of VMs.

Two network namespaces on a lab bridge stand in for the Vagrantfile's machines:
`cp` runs `vagrant/provision/control-plane.sh`, `worker1` runs
`vagrant/provision/worker.sh`, each with its own state directory, exactly as
Vagrant would call them (same arguments); the step the Vagrantfile's trigger does
on the host, copying the control plane's kubeconfig to the shared folder, is done
by the test. There is no systemd here, so the scripts' own fallback supervises the
components; the unit files they write are checked by `systemd-analyze verify`.
Then the host's kubectl sees the worker Ready, a Deployment pulls its image from
the control plane's registry, and its Service answers from the worker.
Everything is removed afterwards, also on failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import cleanup, network, processes
from lab.network import LabNetwork
from tests.conftest import kubectl_binary
from tests.helpers import poll

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / "vagrant" / "provision"


@dataclass
class Machines:
    net: LabNetwork
    base: Path
    cp_ip: str
    worker_ip: str

    def state(self, machine: str) -> Path:
        return self.base / machine

    @property
    def kubeconfig(self) -> Path:
        return self.base / "shared" / "admin.kubeconfig"

    def provision(self, machine: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYK8S_SOURCE": str(ROOT), "PYK8S_STATE_DIR": str(self.state(machine)),
               "PYK8S_SHARED_DIR": str(self.base / "shared"), "PYK8S_UNIT_DIR": str(self.state(machine) / "units"),
               "PYK8S_BIN_DIR": str(self.base / "bin"),
               # several nodes share this kernel's cgroups: keep this one's pods in a tree of its own
               "PYK8S_AGENT_ARGS": f"--cgroup-root /pyk8s-{self.net.name}/{machine}"}
        return subprocess.run(["nsenter", f"--net={self.net.netns_path(machine)}", "--", "bash",
                               str(PROVISION / script), *args], env=env, capture_output=True, text=True,
                              timeout=600)

    def kubectl(self, *args: str) -> str:
        result = subprocess.run([kubectl_binary(), "--kubeconfig", str(self.kubeconfig), *args], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {result.stderr}"
        return result.stdout


def _remove(machines: Machines) -> None:
    # The agent's restart loop first, so nothing recreates what goes next; then the pods
    # through the worker's own containerd, then every process of both machines.
    worker = machines.state("worker1")
    doomed = processes.processes_mentioning(str(worker / "agent" / "kubeconfig"))
    processes.kill_all(doomed)
    cleanup.remove_pods(worker)
    cleanup.remove_leftovers(machines.base)
    cleanup.remove_empty_cgroups(f"pyk8s-{machines.net.name}")
    network.teardown(machines.net)
    shutil.rmtree(machines.base, ignore_errors=True)


@pytest.fixture
def machines() -> Iterator[Machines]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, containerd)")
    for tool in ("containerd", "docker-registry", "skopeo", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup-platform.sh installs it)")
    name = "v" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=4))
    net = LabNetwork(name=name, subnet=network.free_subnet("10.95"))
    made = Machines(net, Path(f"/tmp/pyk8s-vagrant-{name}"), net.node_ip(1), net.node_ip(2))
    try:
        network.create_bridge(net)
        network.add_node(net, "cp", 1)
        network.add_node(net, "worker1", 2)
        (made.base / "shared").mkdir(parents=True)
        yield made
    finally:
        _remove(made)


def test_provisioning_scripts_build_a_working_cluster(machines: Machines) -> None:
    cp = machines.provision("cp", "control-plane.sh", machines.cp_ip)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"control plane up at https://{machines.cp_ip}:6443" in cp.stdout
    # the Vagrantfile's trigger: the host hands the control plane's kubeconfig to the workers
    shutil.copy(machines.state("cp") / "server" / "admin.kubeconfig", machines.kubeconfig)

    worker = machines.provision("worker1", "worker.sh", machines.cp_ip, machines.worker_ip, "worker1", "nftables")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert f"worker worker1 joined {machines.cp_ip}" in worker.stdout

    units = sorted(p.name for d in ("cp", "worker1") for p in (machines.state(d) / "units").glob("*.service"))
    assert units == ["pyk8s-agent.service", "pyk8s-proxy.service", "pyk8s-server.service"]
    if shutil.which("systemd-analyze"):
        for machine in ("cp", "worker1"):
            for unit in (machines.state(machine) / "units").glob("*.service"):
                check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                                       timeout=60)
                problems = [line for line in check.stderr.splitlines() if unit.name in line]
                assert not problems, check.stderr

    def worker_ready() -> bool:
        nodes = json.loads(machines.kubectl("get", "nodes", "-o", "json"))["items"]
        return any(n["metadata"]["name"] == "worker1" and any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
            for n in nodes)

    poll(worker_ready, timeout=120)
    machines.kubectl("create", "deployment", "hello", "--image=pyk8s.local/web:1", "--port=8080")
    machines.kubectl("expose", "deployment", "hello", "--port=80", "--target-port=8080")
    machines.kubectl("rollout", "status", "deployment/hello", "--timeout=180s")
    pod = json.loads(machines.kubectl("get", "pods", "-l", "app=hello", "-o", "json"))["items"][0]
    assert pod["spec"]["nodeName"] == "worker1"
    cluster_ip = machines.kubectl("get", "service", "hello", "-o", "jsonpath={.spec.clusterIP}")

    def service_answers() -> bool:
        answer = subprocess.run(["nsenter", f"--net={machines.net.netns_path('worker1')}", "--", "wget", "-q",
                                 "-T", "3", "-O", "-", f"http://{cluster_ip}/"], capture_output=True, text=True,
                                timeout=30)
        return answer.returncode == 0 and answer.stdout.strip() == pod["metadata"]["name"]

    poll(service_answers, timeout=60)
