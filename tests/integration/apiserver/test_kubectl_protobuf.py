"""kubectl 1.32+ creates objects in protobuf: they must come out exactly as kubectl's JSON makes them.

`kubectl create <kind>`, `create token`, `auth can-i` of kubectl 1.32 and later post
`application/vnd.kubernetes.protobuf`; kubectl 1.31 posts JSON. The same commands
are run with both into two namespaces and the stored objects compared.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KUBECTL_MINORS, kubectl, kubectl_binary

# The pinned kubectls that post protobuf bodies, and the one that posts JSON.
PROTOBUF_MINORS = [m for m in KUBECTL_MINORS if int(m.split(".")[1]) >= 32]
JSON_MINOR = "1.31"

# (kind/name as `kubectl get` takes it, the `kubectl create` arguments)
CREATES: list[tuple[str, list[str]]] = [
    ("configmap/c", ["configmap", "c", "--from-literal=a=b", "--from-literal=empty="]),
    ("secret/s", ["secret", "generic", "s", "--from-literal=a=b", "--from-literal=empty="]),
    ("secret/r", ["secret", "docker-registry", "r", "--docker-server=pyk8s.local", "--docker-username=u",
                  "--docker-password=p"]),
    ("serviceaccount/robot", ["serviceaccount", "robot"]),
    ("deployment/idle", ["deployment", "idle", "--image=pyk8s.local/web:1", "--replicas=0", "--port=8080"]),
    ("deployment/web", ["deployment", "web", "--image=pyk8s.local/web:1", "--replicas=2", "--",
                        "/bin/web", "--flag"]),
    ("job/once", ["job", "once", "--image=pyk8s.local/busybox:1", "--", "true"]),
    ("cronjob/tick", ["cronjob", "tick", "--image=pyk8s.local/busybox:1", "--schedule=*/5 * * * *", "--", "true"]),
    ("service/ci", ["service", "clusterip", "ci", "--tcp=80:8080", "--tcp=53:53"]),
    ("service/np", ["service", "nodeport", "np", "--tcp=80:8080"]),
    ("service/ext", ["service", "externalname", "ext", "--external-name=example.test"]),
]
# A pod template using much of PodSpec: `create job --from=cronjob/rich` sends all of it in protobuf.
RICH_CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: rich}
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 0
      parallelism: 2
      completions: 4
      completionMode: Indexed
      activeDeadlineSeconds: 600
      ttlSecondsAfterFinished: 0
      template:
        metadata:
          labels: {app: rich}
          annotations: {note: "x"}
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 0
          automountServiceAccountToken: false
          enableServiceLinks: false
          hostname: h
          subdomain: s
          dnsPolicy: None
          dnsConfig: {nameservers: [10.0.0.10], searches: [a.test], options: [{name: ndots, value: "2"}]}
          hostAliases: [{ip: 10.1.1.1, hostnames: [one.test]}]
          nodeSelector: {disk: ssd}
          priority: 0
          securityContext: {runAsUser: 0, runAsGroup: 0, fsGroup: 2000, runAsNonRoot: false,
                            supplementalGroups: [1, 2], sysctls: [{name: net.core.somaxconn, value: "1024"}],
                            seccompProfile: {type: RuntimeDefault}}
          tolerations:
          - {key: k, operator: Equal, value: v, effect: NoExecute, tolerationSeconds: 0}
          - {operator: Exists}
          affinity:
            nodeAffinity:
              requiredDuringSchedulingIgnoredDuringExecution:
                nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a, b]}]}]
              preferredDuringSchedulingIgnoredDuringExecution:
              - {weight: 5, preference: {matchFields: [{key: metadata.name, operator: NotIn, values: [n1]}]}}
            podAntiAffinity:
              preferredDuringSchedulingIgnoredDuringExecution:
              - weight: 10
                podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {}, namespaceSelector: {},
                                  matchLabelKeys: [app]}
          topologySpreadConstraints:
          - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule,
             labelSelector: {matchExpressions: [{key: app, operator: Exists}]}, minDomains: 2}
          initContainers:
          - {name: init, image: pyk8s.local/busybox:1, command: [sh, -c, "true"], restartPolicy: Always}
          containers:
          - name: main
            image: pyk8s.local/busybox:1
            imagePullPolicy: IfNotPresent
            command: [sh, -c]
            args: ["sleep 1", ""]
            workingDir: /tmp
            ports: [{name: http, containerPort: 8080, hostPort: 18080, protocol: UDP}]
            env:
            - {name: PLAIN, value: plain}
            - name: POD
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: CPU
              valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
            - name: KEY
              valueFrom: {configMapKeyRef: {name: cm, key: k, optional: true}}
            - name: PASS
              valueFrom: {secretKeyRef: {name: sec, key: p}}
            envFrom: [{prefix: P_, configMapRef: {name: cm}}, {secretRef: {name: sec, optional: false}}]
            resources:
              requests: {cpu: 100m, memory: 64Mi}
              limits: {cpu: "1", memory: 128Mi, ephemeral-storage: 1Gi}
            volumeMounts:
            - {name: scratch, mountPath: /scratch}
            - {name: conf, mountPath: /etc/conf, readOnly: true, subPath: a}
            livenessProbe:
              httpGet: {path: /healthz, port: http, scheme: HTTP, httpHeaders: [{name: X, value: "yes-please"}]}
              initialDelaySeconds: 3
              periodSeconds: 5
              failureThreshold: 2
            readinessProbe:
              tcpSocket: {port: 8080}
              timeoutSeconds: 2
            startupProbe:
              exec: {command: ["true"]}
            lifecycle:
              preStop: {exec: {command: [sh, -c, "sleep 1"]}}
              postStart: {httpGet: {port: 8080}}
            securityContext:
              privileged: false
              readOnlyRootFilesystem: true
              allowPrivilegeEscalation: false
              capabilities: {add: [NET_ADMIN], drop: [ALL]}
            stdin: true
            tty: true
            terminationMessagePolicy: FallbackToLogsOnError
          volumes:
          - {name: scratch, emptyDir: {}}
          - {name: mem, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
          - name: conf
            configMap: {name: cm, defaultMode: 0, items: [{key: k, path: p, mode: 0}], optional: true}
          - {name: sec, secret: {secretName: sec, defaultMode: 256}}
          - {name: host, hostPath: {path: /tmp, type: Directory}}
          - name: proj
            projected:
              sources:
              - serviceAccountToken: {path: token, expirationSeconds: 600, audience: api}
              - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
              - configMap: {name: cm}
"""
GENERATED = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "namespace", "generation")


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what the server generates per object (names, times, allocated addresses)."""
    obj = json.loads(json.dumps(obj))
    for key in GENERATED:
        obj["metadata"].pop(key, None)
    obj.pop("status", None)
    spec = obj.get("spec") or {}
    for key in ("clusterIP", "clusterIPs"):
        spec.pop(key, None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)
    template = ((spec.get("jobTemplate") or {}).get("spec") or spec).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):  # the job's own uid
        labels.pop(key, None)
    if "selector" in spec and isinstance(spec["selector"], dict):
        spec["selector"].get("matchLabels", {}).pop("batch.kubernetes.io/controller-uid", None)
    return obj


async def run(kubeconfig: Path, binary: str, *args: str) -> str:
    result = await asyncio.to_thread(kubectl, kubeconfig, *args, binary=binary)
    assert result.stderr == "", result.stderr
    return result.stdout


@pytest.mark.parametrize("minor", PROTOBUF_MINORS)
async def test_protobuf_creates_match_json_creates(kubeconfig: Path, minor: str) -> None:
    binary, json_kubectl = kubectl_binary(minor), kubectl_binary(JSON_MINOR)
    await run(kubeconfig, binary, "create", "namespace", "via-protobuf")
    await run(kubeconfig, json_kubectl, "create", "namespace", "via-json")
    for _, args in CREATES:
        for namespace, creator in (("via-protobuf", binary), ("via-json", json_kubectl)):
            await run(kubeconfig, creator, "create", "-n", namespace, *args)
    for what, _ in CREATES:
        made = [json.loads(await run(kubeconfig, json_kubectl, "get", "-n", namespace, what, "-o", "json"))
                for namespace in ("via-protobuf", "via-json")]
        assert comparable(made[0]) == comparable(made[1]), what
    idle = json.loads(await run(kubeconfig, json_kubectl, "get", "-n", "via-protobuf", "deployment/idle", "-o", "json"))
    assert idle["spec"]["replicas"] == 0  # a zero that protobuf carries as a value, not as "unset"
    secret = json.loads(await run(kubeconfig, json_kubectl, "get", "-n", "via-protobuf", "secret/s", "-o", "json"))
    assert secret["data"] == {"a": "Yg==", "empty": ""}

    # a job from a cronjob carries the whole pod template through protobuf
    await run(kubeconfig, binary, "create", "-n", "via-protobuf", "job", "manual", "--from=cronjob/tick")
    job = json.loads(await run(kubeconfig, json_kubectl, "get", "-n", "via-protobuf", "job/manual", "-o", "json"))
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["true"]
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"

    # every field of a rich pod template, through protobuf, lands as JSON had it
    await asyncio.to_thread(kubectl, kubeconfig, "apply", "-n", "via-protobuf", "-f", "-", binary=json_kubectl,
                            input=RICH_CRONJOB)
    await run(kubeconfig, binary, "create", "-n", "via-protobuf", "job", "rich-now", "--from=cronjob/rich")
    cronjob = json.loads(await run(kubeconfig, json_kubectl, "get", "-n", "via-protobuf", "cronjob/rich", "-o",
                                   "json"))
    rich = json.loads(await run(kubeconfig, json_kubectl, "get", "-n", "via-protobuf", "job/rich-now", "-o", "json"))
    want = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert rich["spec"]["template"]["spec"] == want
    assert rich["spec"]["ttlSecondsAfterFinished"] == 0 and rich["spec"]["backoffLimit"] == 0
    assert want["securityContext"]["runAsUser"] == 0 and want["volumes"][0] == {"name": "scratch", "emptyDir": {}}

    token = (await run(kubeconfig, binary, "create", "token", "robot", "-n", "via-protobuf")).strip()
    whoami = await run(kubeconfig, binary, "auth", "whoami", "--token", token, "-o", "json")
    assert json.loads(whoami)["status"]["userInfo"]["username"] == "system:serviceaccount:via-protobuf:robot"
    assert (await run(kubeconfig, binary, "auth", "can-i", "create", "pods")).strip() == "yes"
