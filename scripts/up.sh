#!/usr/bin/env bash
# `make up`: a 2-node lab cluster (SQLite, one containerd per node) with the demo workload.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$PWD/.data}
NODES=${PYK8S_NODES:-2}
KC="$DATA/admin.kubeconfig"

.venv/bin/pyk8s lab up --nodes "$NODES" --data-dir "$DATA"
kubectl --kubeconfig "$KC" apply -f examples/demo.yaml
kubectl --kubeconfig "$KC" rollout status deployment/web --timeout=180s
NODE_IP=$(kubectl --kubeconfig "$KC" get node node1 -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
cat <<MSG

pyk8s is up: ${NODES} nodes, demo Deployment "web" (3 replicas) behind Service "web" (NodePort 30080).
Try:
  export KUBECONFIG=$KC
  kubectl get nodes -o wide
  kubectl get pods -o wide
  kubectl get svc,endpointslices
  .venv/bin/pyk8s lab exec node1 --data-dir $DATA -- wget -qO- http://${NODE_IP}:30080/
  kubectl scale deployment web --replicas=5
  kubectl logs deployment/web
Tear down with: make down
MSG
