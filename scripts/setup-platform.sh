#!/usr/bin/env bash
# Installs the Debian components a pyk8s node and its tests use, idempotently:
# apt is asked only for packages that are missing (and `apt-get update` runs only
# then), so a machine that has everything succeeds with no registry reachable.
set -euo pipefail

PACKAGES=(
    containerd runc containernetworking-plugins iptables nftables ipvsadm conntrack ipset
    etcd-server etcd-client docker-registry skopeo umoci busybox-static iproute2 socat
    kmod procps psmisc util-linux
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-platform: missing packages (${missing[*]}) and not root; install them first" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    for attempt in 1 2 3 4 5; do
        if apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; then
            break
        fi
        if [ "$attempt" = 5 ]; then
            echo "setup-platform: apt-get could not install: ${missing[*]}" >&2
            exit 1
        fi
        echo "setup-platform: apt-get failed (attempt $attempt), retrying in $((attempt * 20)) s" >&2
        sleep $((attempt * 20))
    done
    # Debian starts services it installs where it can; pyk8s runs its own instances.
    for svc in containerd etcd docker-registry; do
        command -v service >/dev/null 2>&1 && service "$svc" stop >/dev/null 2>&1 || true
    done
fi
echo "setup-platform: ${#PACKAGES[@]} packages present (${#missing[@]} installed now)"
