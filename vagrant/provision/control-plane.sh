#!/usr/bin/env bash
# Control-plane VM: `pyk8s server` (API server, scheduler, controllers) on the private address,
# and the image registry the workers pull from.
set -euo pipefail
ADDRESS=$1
# Vagrant uploads this script alone, so common.sh is found in the project checkout.
source "${PYK8S_SOURCE:-/opt/pyk8s}/vagrant/provision/common.sh"
PYK8S_REGISTRY_ADDR="0.0.0.0:5000" install_platform
write_unit pyk8s-server "pyk8s control plane" \
    "$PYK8S" server --data-dir "$STATE/server" --bind-address "$ADDRESS" --disable-agent
for _ in $(seq 1 120); do
    curl -fsk "https://${ADDRESS}:6443/readyz" >/dev/null 2>&1 && [ -f "$STATE/server/admin.kubeconfig" ] && break
    sleep 1
done
curl -fsk "https://${ADDRESS}:6443/readyz" >/dev/null || { echo "the API server did not become ready" >&2; exit 1; }
echo "control plane up at https://${ADDRESS}:6443"
