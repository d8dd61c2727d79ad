#!/usr/bin/env bash
# Worker VM: `pyk8s agent` (with its own containerd) and `pyk8s proxy`.
# PYK8S_AGENT_ARGS adds agent flags (e.g. --cgroup-root when several nodes share one kernel).
set -euo pipefail
SERVER=$1 ADDRESS=$2 NODE=$3 PROXY_MODE=${4:-iptables}
# Vagrant uploads this script alone, so common.sh is found in the project checkout.
source "${PYK8S_SOURCE:-/opt/pyk8s}/vagrant/provision/common.sh"
install_platform --packages-only
KUBECONFIG_PATH=$STATE/agent/kubeconfig
mkdir -p "$STATE/agent"
for _ in $(seq 1 300); do
    [ -f "$SHARED/admin.kubeconfig" ] && break
    sleep 1
done
install -m 0600 "$SHARED/admin.kubeconfig" "$KUBECONFIG_PATH"
# shellcheck disable=SC2086  # PYK8S_AGENT_ARGS is a list of flags
write_unit pyk8s-agent "pyk8s node agent" \
    "$PYK8S" agent --kubeconfig "$KUBECONFIG_PATH" --node-name "$NODE" --node-ip "$ADDRESS" \
    --data-dir "$STATE/agent" --registry-mirror "pyk8s.local=http://${SERVER}:5000" ${PYK8S_AGENT_ARGS:-}
write_unit pyk8s-proxy "pyk8s service proxy" \
    "$PYK8S" proxy --kubeconfig "$KUBECONFIG_PATH" --node-name "$NODE" --mode "$PROXY_MODE"
echo "worker $NODE joined $SERVER"
