"""The agent against a real containerd: pods run, restart, probe, mount, terminate, report.

Each test creates pods through the API and watches what the agent reports, as a
user of kubectl would; the node's namespace is the only place traffic goes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
from typing import Any

from controlplane.api import resources
from tests.helpers import eventually
from tests.integration.agent.conftest import NodeEnv, container_state, running

Obj = dict[str, Any]
BUSYBOX = "pyk8s.local/busybox:1"
WEB = "pyk8s.local/web:1"


def pod(name: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": containers, "terminationGracePeriodSeconds": 2, **spec}}


def sh(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **extra}


async def create(env: NodeEnv, obj: Obj) -> Obj:
    return await env.client.create(resources.PODS, obj, "default")


async def logs(env: NodeEnv, name: str, container: str | None = None, **query: str) -> str:
    return await env.client.pod_logs(name, "default", container=container, **query)


def read_text(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def in_node(env: NodeEnv, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net={env.net.netns_path(env.node)}", *argv], capture_output=True,
                          text=True, timeout=30)


async def test_pod_runs_with_network_and_status(node_env: NodeEnv) -> None:
    await create(node_env, pod("web", [{"name": "web", "image": WEB, "ports": [{"containerPort": 8080}]}]))
    found = await node_env.wait_pod("web", lambda p: running(p) and p["status"].get("podIP"))
    status = found["status"]
    node = await node_env.client.get(resources.NODES, "n1")
    cidr_prefix = node["spec"]["podCIDR"].rsplit(".", 2)[0]
    assert status["podIP"].startswith(cidr_prefix), (status["podIP"], node["spec"]["podCIDR"])
    assert status["hostIP"] == node_env.node_ip
    state = container_state(found, "web")
    assert state["restartCount"] == 0 and state["containerID"].startswith("containerd://")
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True" and ready["ContainersReady"] == "True" and ready["Initialized"] == "True"
    answer = in_node(node_env, "wget", "-q", "-O", "-", f"http://{status['podIP']}:8080/")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "web"
    reasons = {e["reason"] for e in await node_env.events("web")}
    assert {"Created", "Started"} <= reasons and ("Pulled" in reasons), reasons


async def test_crash_loop_backs_off_and_counts_restarts(node_env: NodeEnv) -> None:
    await create(node_env, pod("crash", [sh("c", "echo dying; exit 3")]))
    found = await node_env.wait_pod("crash", lambda p: container_state(p, "c").get("restartCount", 0) >= 1 and
                                    "waiting" in container_state(p, "c").get("state", {}), timeout=60)
    state = container_state(found, "c")
    assert state["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert state["lastState"]["terminated"]["exitCode"] == 3
    assert state["lastState"]["terminated"]["reason"] == "Error"
    assert "BackOff" in {e["reason"] for e in await node_env.events("crash")}


async def test_liveness_failure_restarts_container(node_env: NodeEnv) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    await create(node_env, pod("live", [sh("c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600",
                                           livenessProbe=probe)]))
    await node_env.wait_pod("live", lambda p: container_state(p, "c").get("restartCount", 0) >= 1, timeout=60)
    events = await node_env.events("live")
    assert any(e["reason"] == "Unhealthy" and "Liveness probe failed" in e["message"] for e in events)
    assert any(e["reason"] == "Killing" and "failed liveness probe" in e["message"] for e in events)


async def test_readiness_probe_gates_ready(node_env: NodeEnv) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}
    await create(node_env, pod("ready", [sh("c", "sleep 5; touch /tmp/ready; sleep 3600", readinessProbe=probe)]))
    early = await node_env.wait_pod("ready", running)
    assert container_state(early, "c")["ready"] is False
    assert {c["type"]: c["status"] for c in early["status"]["conditions"]}["Ready"] == "False"
    later = await node_env.wait_pod("ready", lambda p: container_state(p, "c").get("ready") is True)
    assert {c["type"]: c["status"] for c in later["status"]["conditions"]}["Ready"] == "True"


async def test_init_containers_run_in_order_first(node_env: NodeEnv) -> None:
    volume = [{"name": "work", "emptyDir": {}}]
    mount = [{"name": "work", "mountPath": "/work"}]
    await create(node_env, pod("init", [sh("main", "cat /work/order; sleep 3600", volumeMounts=mount)],
                               initContainers=[sh("first", "echo first >> /work/order", volumeMounts=mount),
                                               sh("second", "echo second >> /work/order", volumeMounts=mount)],
                               volumes=volume))
    found = await node_env.wait_pod("init", running)
    inits = found["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
    await eventually(lambda: _logs_contain(node_env, "init", "main", "first\nsecond\n"), timeout=20)


async def _logs_contain(env: NodeEnv, name: str, container: str, text: str) -> bool:
    try:
        return text in await logs(env, name, container)
    except Exception:
        return False


async def test_volumes_of_every_kind(node_env: NodeEnv) -> None:
    await node_env.client.create(resources.CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"greeting": "hello"}},
                                 "default")
    await node_env.client.create(resources.SECRETS, {"metadata": {"name": "sec"},
                                                     "data": {"password": base64.b64encode(b"s3cret").decode()}},
                                 "default")
    host_dir = f"/tmp/pyk8s-agent-{node_env.net.name}/hostpath"
    script = ("while true; do echo cm=$(cat /cfg/greeting) sec=$(cat /sec/password) name=$(cat /down/name) "
              "label=$(cat /down/labels) proj=$(cat /proj/greeting) tok=$(wc -c < /proj/token) "
              "mem=$(grep -c ' /mem tmpfs' /proc/mounts) sub=$(cat /sub/marker 2>/dev/null) "
              "secfs=$(grep -c ' /sec tmpfs' /proc/mounts) projfs=$(grep -c ' /proj tmpfs' /proc/mounts); "
              "echo written > /host/out; sleep 1; done")
    mounts = [{"name": "cm", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"},
              {"name": "down", "mountPath": "/down"}, {"name": "proj", "mountPath": "/proj"},
              {"name": "mem", "mountPath": "/mem"}, {"name": "host", "mountPath": "/host"},
              {"name": "scratch", "mountPath": "/sub", "subPath": "nested/dir"}]
    volumes = [
        {"name": "cm", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "sec"}},
        {"name": "down", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                                                   {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "proj", "projected": {"sources": [{"configMap": {"name": "cfg"}},
                                                   {"serviceAccountToken": {"path": "token"}}]}},
        {"name": "mem", "emptyDir": {"medium": "Memory"}},
        {"name": "host", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    await create(node_env, pod("vols", [sh("c", script, volumeMounts=mounts)], volumes=volumes))
    await node_env.wait_pod("vols", running)
    await eventually(lambda: _logs_contain(node_env, "vols", "c", 'cm=hello sec=s3cret name=vols label=app="vols"'),
                     timeout=30)
    text = await logs(node_env, "vols", "c")
    assert "proj=hello" in text and "mem=1" in text
    assert "secfs=1" in text and "projfs=1" in text  # secrets and tokens live in memory, as upstream keeps them
    assert "tok=0" not in text
    assert read_text(f"{host_dir}/out").strip() == "written"
    cm = await node_env.client.get(resources.CONFIGMAPS, "cfg", "default")
    cm["data"]["greeting"] = "updated"
    await node_env.client.update(resources.CONFIGMAPS, cm)
    await eventually(lambda: _logs_contain(node_env, "vols", "c", "cm=updated"), timeout=60)
    secret = await node_env.client.get(resources.SECRETS, "sec", "default")
    secret["data"]["password"] = base64.b64encode(b"rotated").decode()
    await node_env.client.update(resources.SECRETS, secret)
    await eventually(lambda: _logs_contain(node_env, "vols", "c", "sec=rotated"), timeout=60)


async def test_environment(node_env: NodeEnv) -> None:
    await node_env.client.create(resources.CONFIGMAPS, {"metadata": {"name": "envcfg"}, "data": {"mode": "fast"}},
                                 "default")
    await node_env.client.create(resources.SECRETS, {"metadata": {"name": "envsec"},
                                                     "data": {"token": base64.b64encode(b"t0k").decode()}}, "default")
    env = [{"name": "PLAIN", "value": "plain"}, {"name": "EXPANDED", "value": "$(PLAIN)-x"},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
           {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "envcfg", "key": "mode"}}},
           {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "envsec", "key": "token"}}}]
    script = "echo $PLAIN $EXPANDED $POD_NAME $MODE $TOKEN svc=$KUBERNETES_SERVICE_HOST; sleep 3600"
    await create(node_env, pod("envs", [sh("c", script, env=env)]))
    await node_env.wait_pod("envs", running)
    await eventually(lambda: _logs_contain(node_env, "envs", "c", "plain plain-x envs fast t0k svc=10."), timeout=20)


async def test_graceful_termination_runs_prestop(node_env: NodeEnv) -> None:
    host_dir = f"/tmp/pyk8s-agent-{node_env.net.name}/prestop"
    mounts = [{"name": "h", "mountPath": "/h"}]
    script = "trap 'echo term >> /h/log; exit 0' TERM; while true; do sleep 0.2; done"
    container = sh("c", script, volumeMounts=mounts,
                   lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /h/log"]}}})
    await create(node_env, pod("graceful", [container], terminationGracePeriodSeconds=10,
                               volumes=[{"name": "h", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}]))
    await node_env.wait_pod("graceful", running)
    await node_env.client.delete(resources.PODS, "graceful", "default")

    async def gone() -> bool:
        try:
            await node_env.pod("graceful")
        except Exception:
            return True
        return False

    await eventually(gone, timeout=30)
    assert read_text(f"{host_dir}/log").split() == ["prestop", "term"]


async def test_pod_that_completes(node_env: NodeEnv) -> None:
    await create(node_env, pod("once", [sh("c", "echo done")], restartPolicy="Never"))
    found = await node_env.wait_pod("once", lambda p: p["status"].get("phase") == "Succeeded")
    terminated = container_state(found, "c")["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    await create(node_env, pod("fails", [sh("c", "exit 7")], restartPolicy="Never"))
    failed = await node_env.wait_pod("fails", lambda p: p["status"].get("phase") == "Failed")
    assert container_state(failed, "c")["state"]["terminated"]["exitCode"] == 7


async def test_bad_input_is_reported_and_others_keep_running(node_env: NodeEnv) -> None:
    await create(node_env, pod("fine", [sh("c", "sleep 3600")]))
    await create(node_env, pod("noimage", [{"name": "c", "image": "pyk8s.local/does-not-exist:1"}]))
    await create(node_env, pod("nocmd", [{"name": "c", "image": BUSYBOX, "command": ["/no/such/binary"]}]))
    await create(node_env, pod("nocm", [sh("c", "sleep 3600", env=[
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "missing", "key": "k"}}}])]))
    await create(node_env, pod("badvol", [sh("c", "sleep 3600", volumeMounts=[{"name": "v", "mountPath": "/v"}])],
                               volumes=[{"name": "v", "hostPath": {"path": "/nonexistent/pyk8s", "type": "Directory"}}]))
    await node_env.wait_pod("fine", running)
    await node_env.wait_pod("noimage", lambda p: container_state(p, "c").get("state", {}).get("waiting", {}).get(
        "reason") in ("ErrImagePull", "ImagePullBackOff"))
    await node_env.wait_pod("nocmd", lambda p: container_state(p, "c").get("restartCount", 0) >= 1 or
                            container_state(p, "c").get("state", {}).get("terminated", {}).get("exitCode", 0) != 0 or
                            ("lastState" in container_state(p, "c") and container_state(p, "c")["lastState"]))
    nocm = await node_env.wait_pod("nocm", lambda p: container_state(p, "c").get("state", {}).get(
        "waiting", {}).get("reason") == "CreateContainerConfigError")
    assert 'configmap "missing" not found' in container_state(nocm, "c")["state"]["waiting"]["message"]

    async def mount_failed() -> bool:
        return any(e["reason"] == "FailedMount" for e in await node_env.events("badvol"))

    await eventually(mount_failed, timeout=30)
    assert (await node_env.pod("badvol"))["status"]["phase"] == "Pending"
    assert any(e["reason"] == "Failed" for e in await node_env.events("noimage"))
    assert running(await node_env.pod("fine"))


async def test_agent_restart_adopts_running_pods(node_env: NodeEnv) -> None:
    for i in range(10):
        await create(node_env, pod(f"keep{i}", [sh("c", "sleep 3600")]))
    ids: dict[str, str] = {}
    for i in range(10):
        found = await node_env.wait_pod(f"keep{i}", running, timeout=90)
        ids[f"keep{i}"] = container_state(found, "c")["containerID"]
    node_env.kill_agent()
    node_env.start_agent()
    await asyncio.sleep(3)  # let the new agent relist and sync every pod at least once
    for name, container_id in ids.items():
        found = await node_env.wait_pod(name, running)
        state = container_state(found, "c")
        assert state["containerID"] == container_id and state["restartCount"] == 0
    # containerd's own view: each pod is its sandbox (pause) container plus one app container, nothing twice
    listed = node_env.crictl("containers", "list", "-q")
    assert len([line for line in listed.splitlines() if line.strip()]) == 2 * 10


async def test_containerd_restart_is_survived(node_env: NodeEnv) -> None:
    await create(node_env, pod("survivor", [sh("c", "sleep 3600")]))
    found = await node_env.wait_pod("survivor", running)
    container_id = container_state(found, "c")["containerID"]
    pid_file = node_env.data_dir / "containerd" / "containerd.pid"
    os.kill(int(read_text(str(pid_file))), signal.SIGKILL)

    async def restarted() -> bool:
        return in_node(node_env, "true").returncode == 0 and bool(node_env.crictl("version"))

    await eventually(restarted, timeout=30)
    await create(node_env, pod("after", [sh("c", "sleep 3600")]))
    await node_env.wait_pod("after", running)
    again = await node_env.wait_pod("survivor", running)
    assert container_state(again, "c")["containerID"] == container_id


async def test_security_context_and_resources_reach_the_container(node_env: NodeEnv) -> None:
    script = ("echo uid=$(id -u) gid=$(id -g); touch /rootfs-write 2>/dev/null && echo rw || echo ro; "
              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
              "sleep 3600")
    container = sh("c", script, securityContext={"runAsUser": 1234, "runAsGroup": 2345,
                                                 "readOnlyRootFilesystem": True},
                   resources={"limits": {"memory": "64Mi", "cpu": "250m"}})
    await create(node_env, pod("secure", [container]))
    found = await node_env.wait_pod("secure", running)
    assert found["status"]["qosClass"] == "Guaranteed"  # requests default to the limits
    await eventually(lambda: _logs_contain(node_env, "secure", "c", "uid=1234 gid=2345\nro\n67108864"),
                     timeout=20)


async def test_http_tcp_and_startup_probes(node_env: NodeEnv) -> None:
    web = {"name": "web", "image": WEB, "ports": [{"name": "http", "containerPort": 8080}],
           "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
           "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
           "startupProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1, "failureThreshold": 30}}
    await create(node_env, pod("probed", [web]))
    found = await node_env.wait_pod("probed", lambda p: container_state(p, "web").get("ready") is True)
    state = container_state(found, "web")
    assert state["started"] is True and state["restartCount"] == 0
    # a startup probe that never succeeds gets the container killed and restarted, like liveness
    never = sh("c", "sleep 3600", startupProbe={"exec": {"command": ["false"]}, "periodSeconds": 1,
                                                "failureThreshold": 2})
    await create(node_env, pod("nostart", [never]))
    stuck = await node_env.wait_pod("nostart", lambda p: container_state(p, "c").get("restartCount", 0) >= 1
                                    and "running" in container_state(p, "c").get("state", {}))
    assert container_state(stuck, "c")["started"] is False and container_state(stuck, "c")["ready"] is False
    assert any("Startup probe failed" in e["message"] for e in await node_env.events("nostart"))


async def test_pod_that_does_not_fit_is_rejected_and_never_started(node_env: NodeEnv) -> None:
    # bound by its author, past the scheduler: the agent's own admission refuses it
    greedy = pod("greedy", [sh("c", "sleep 3600", resources={"requests": {"cpu": "64"}})], nodeName=node_env.node)
    await create(node_env, greedy)
    found = await node_env.wait_pod("greedy", lambda p: (p.get("status") or {}).get("phase") == "Failed")
    assert found["status"]["reason"] == "OutOfcpu"
    assert found["status"]["message"].startswith("Pod was rejected: Node didn't have enough resource: cpu, "
                                                 "requested: 64000, used: ")
    pinned = pod("pinned", [sh("c", "sleep 3600")], nodeName=node_env.node, nodeSelector={"disk": "none"})
    await create(node_env, pinned)
    found = await node_env.wait_pod("pinned", lambda p: (p.get("status") or {}).get("phase") == "Failed")
    assert found["status"]["reason"] == "NodeAffinity"
    await create(node_env, pod("modest", [sh("c", "sleep 3600", resources={"requests": {"cpu": "10m"}})],
                               nodeName=node_env.node))
    await node_env.wait_pod("modest", running)
    events = {e["reason"] for e in await node_env.events("greedy")}
    assert "OutOfcpu" in events
    modest_uid = (await node_env.pod("modest"))["metadata"]["uid"]
    assert node_env.crictl("containers", "list", "-q", f'labels."io.kubernetes.pod.uid"=={modest_uid}').split()
    for name in ("greedy", "pinned"):  # neither a sandbox nor a container
        uid = (await node_env.pod(name))["metadata"]["uid"]
        assert node_env.crictl("containers", "list", "-q", f'labels."io.kubernetes.pod.uid"=={uid}').split() == []
    # a rejected pod is deleted like any finished one
    await node_env.client.delete(resources.PODS, "greedy", "default")
    await eventually(lambda: _gone(node_env, "greedy"), timeout=30)


async def _gone(env: NodeEnv, name: str) -> bool:
    try:
        await env.pod(name)
    except Exception:
        return True
    return False
