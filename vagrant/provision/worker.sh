#!/usr/bin/env bash
# Worker VM: `pyk8s agent` (with its own containerd) and `pyk8s proxy`.
set -euo pipefail
SERVER=$1 ADDRESS=$2 NODE=$3 PROXY_MODE=${4:-iptables}
source /opt/pyk8s/vagrant/provision/common.sh
KUBECONFIG_PATH=/var/lib/pyk8s/agent/kubeconfig
mkdir -p /var/lib/pyk8s/agent
for _ in $(seq 1 300); do
    [ -f /var/lib/pyk8s-shared/admin.kubeconfig ] && break
    sleep 1
done
install -m 0600 /var/lib/pyk8s-shared/admin.kubeconfig "$KUBECONFIG_PATH"
write_unit pyk8s-agent "pyk8s node agent" \
    /usr/local/bin/pyk8s agent --kubeconfig "$KUBECONFIG_PATH" --node-name "$NODE" --node-ip "$ADDRESS" \
    --data-dir /var/lib/pyk8s/agent --registry-mirror "pyk8s.local=http://${SERVER}:5000"
write_unit pyk8s-proxy "pyk8s service proxy" \
    /usr/local/bin/pyk8s proxy --kubeconfig "$KUBECONFIG_PATH" --node-name "$NODE" --mode "$PROXY_MODE"
echo "worker $NODE joined $SERVER"
