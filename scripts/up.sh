#!/usr/bin/env bash
# `make up`: start the pyk8s control plane (SQLite) in the background and apply the demo.
# While the node agent (issue 3) is not in the tree, the demo's objects are stored,
# defaulted, validated and served, but no pod runs: there is no kubelet to run it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-$PWD/.data}
PORT=${PYK8S_PORT:-6443}
KC="$DATA/admin.kubeconfig"
mkdir -p "$DATA"

if [ -f "$DATA/server.pid" ] && kill -0 "$(cat "$DATA/server.pid")" 2>/dev/null; then
    echo "pyk8s server already running (pid $(cat "$DATA/server.pid"))"
else
    nohup .venv/bin/pyk8s server --data-dir "$DATA" --secure-port "$PORT" --disable-agent \
        > "$DATA/server.log" 2>&1 &
    echo $! > "$DATA/server.pid"
fi
for _ in $(seq 1 100); do
    if [ -f "$KC" ] && kubectl --kubeconfig "$KC" get --raw /readyz >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
kubectl --kubeconfig "$KC" get --raw /readyz >/dev/null || { echo "server did not start; see $DATA/server.log" >&2; exit 1; }
kubectl --kubeconfig "$KC" apply -f examples/demo.yaml
cat <<MSG

pyk8s control plane is up at https://127.0.0.1:${PORT} (SQLite in $DATA/state.db).
Try:
  export KUBECONFIG=$KC
  kubectl get namespaces
  kubectl get deployments,services -o wide
  kubectl scale deployment web --replicas=5
  kubectl get deployment web -o yaml
  kubectl get svc web -o jsonpath='{.spec.clusterIP} {.spec.ports[0].nodePort}'
Stop it with: make down
MSG
