#!/usr/bin/env bash
# Control-plane VM: `pyk8s server` (API server, scheduler, controllers) on the private address.
set -euo pipefail
ADDRESS=$1
# Workers pull the images from this VM's registry.
export PYK8S_REGISTRY_ADDR="0.0.0.0:5000"
source /opt/pyk8s/vagrant/provision/common.sh
write_unit pyk8s-server "pyk8s control plane" \
    /usr/local/bin/pyk8s server --data-dir /var/lib/pyk8s/server --bind-address "$ADDRESS" --disable-agent
for _ in $(seq 1 120); do
    [ -f /var/lib/pyk8s/server/admin.kubeconfig ] && break
    sleep 1
done
echo "control plane up at https://${ADDRESS}:6443"
