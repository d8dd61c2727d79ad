from __future__ import annotations

import datetime as dt

from controlplane.api import resources
from controlplane.api.printers import human_duration, to_table

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_human_durations_match_kubectl() -> None:
    assert [human_duration(s) for s in (5, 119, 192, 3600 * 5 + 600, 86400 * 2 + 3600 * 3, 86400 * 30)] == \
        ["5s", "119s", "3m12s", "5h10m", "2d3h", "30d"]


def test_pod_columns_status_ready_restarts() -> None:
    pod = {"metadata": {"name": "p", "creationTimestamp": "2026-01-01T11:59:00Z"},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
           "status": {"phase": "Running", "podIP": "10.244.1.5", "containerStatuses": [
               {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
               {"name": "b", "ready": False, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"finishedAt": "2026-01-01T11:55:00Z"}}}]}}
    table = to_table(resources.PODS, [pod], now=NOW)
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:7] == ["p", "1/2", "CrashLoopBackOff", "3 (5m ago)", "60s", "10.244.1.5", "n1"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_init_and_terminating_status() -> None:
    pod = {"metadata": {"name": "p", "deletionTimestamp": "x"}, "spec": {"containers": [{}]},
           "status": {"phase": "Running"}}
    assert to_table(resources.PODS, [pod], now=NOW)["rows"][0]["cells"][2] == "Terminating"
    init = {"metadata": {"name": "p"}, "spec": {"initContainers": [{}, {}], "containers": [{}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"state": {"terminated": {"exitCode": 0}}}, {"state": {"running": {}}}]}}
    assert to_table(resources.PODS, [init], now=NOW)["rows"][0]["cells"][2] == "Init:1/2"


def test_service_ports_and_node_status() -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.9",
                                                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}
    assert to_table(resources.SERVICES, [svc], now=NOW)["rows"][0]["cells"][1:5] == \
        ["NodePort", "10.96.0.9", "<none>", "80:30080/TCP"]
    node = {"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert to_table(resources.NODES, [node], now=NOW)["rows"][0]["cells"][1:3] == \
        ["Ready,SchedulingDisabled", "control-plane"]
