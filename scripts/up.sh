#!/usr/bin/env bash
# `make up`: a two-node lab cluster on this machine (control plane on SQLite, each node a
# network namespace with its own containerd, agent and proxy), then the demo workload.
# Idempotent: an earlier lab under the same data directory is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$PWD/.data}
NODES=${PYK8S_NODES:-2}
KC="$DATA/admin.kubeconfig"
mkdir -p "$DATA"

.venv/bin/pyk8s lab up --data-dir "$DATA" --nodes "$NODES"
export KUBECONFIG="$KC"
# The project's kubectl (scripts/install-kubectl.sh), whatever else the machine has.
export PATH="$PWD/.venv/bin:$PATH"
kubectl apply -f examples/demo.yaml
echo "waiting for the demo pods to be Ready ..."
if ! kubectl wait --for=condition=Available deployment/web --timeout=180s; then
    kubectl get pods -o wide
    echo "the demo did not become available; see $DATA/logs/" >&2
    exit 1
fi
kubectl get nodes -o wide
kubectl get pods -o wide
NODE_IP=$(kubectl get node node1 -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
cat <<MSG

pyk8s is up: $NODES nodes, control plane on SQLite in $DATA/control-plane.
Try:
  export KUBECONFIG=$KC PATH=$PWD/.venv/bin:\$PATH    # .venv/bin/kubectl: the project's kubectl
  kubectl get pods -o wide
  kubectl logs deployment/web
  curl http://$NODE_IP:30080/          # the web Service's NodePort: answers with a pod's name
  kubectl scale deployment web --replicas=5
  .venv/bin/pyk8s lab exec --data-dir $DATA node1 -- wget -qO- http://\$(kubectl get svc web -o jsonpath='{.spec.clusterIP}')/
Stop it with: make down
MSG
