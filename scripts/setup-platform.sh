#!/usr/bin/env bash
# Installs the Debian components a pyk8s node and its tests use, idempotently:
# apt is asked only for packages that are missing (and `apt-get update` runs only
# then), so a machine that has everything succeeds with no registry reachable.
# `--packages-only` stops after the packages (a worker VM pulls images from elsewhere).
set -euo pipefail
# `--list-packages` prints the list (the Vagrant box builder preinstalls it).
PACKAGES_ONLY=0
[ "${1:-}" = "--packages-only" ] && PACKAGES_ONLY=1

PACKAGES=(
    containerd runc containernetworking-plugins iptables nftables ipvsadm conntrack ipset
    etcd-server etcd-client docker-registry skopeo umoci busybox-static iproute2 socat
    kmod procps psmisc util-linux curl
)
if [ "${1:-}" = "--list-packages" ]; then
    echo "${PACKAGES[@]}"
    exit 0
fi

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
[ "$PACKAGES_ONLY" = 1 ] && exit 0

# --- test images and the local registry -------------------------------------------------
# Images are built from busybox-static (scripts/images/build.py, reproducible digests) and
# served by Debian's docker-registry; containerd maps the registry host `pyk8s.local` to it.
STATE=${PYK8S_STATE_DIR:-/var/lib/pyk8s}
REGISTRY_ADDR=${PYK8S_REGISTRY_ADDR:-127.0.0.1:5000}
REGISTRY_DIR="$STATE/registry"
PY=${PYTHON:-python3}
[ -x "$(dirname "$0")/../.venv/bin/python" ] && PY="$(dirname "$0")/../.venv/bin/python"
mkdir -p "$REGISTRY_DIR/storage" "$STATE/images"

registry_url="http://${REGISTRY_ADDR/0.0.0.0/127.0.0.1}"
if ! curl -fs "$registry_url/v2/" >/dev/null 2>&1; then
    cat > "$REGISTRY_DIR/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/storage
http:
  addr: $REGISTRY_ADDR
YAML
    nohup docker-registry serve "$REGISTRY_DIR/config.yml" > "$REGISTRY_DIR/registry.log" 2>&1 &
    echo $! > "$REGISTRY_DIR/registry.pid"
    for _ in $(seq 1 50); do curl -fs "$registry_url/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
    curl -fs "$registry_url/v2/" >/dev/null || { echo "setup-platform: the registry did not start; see $REGISTRY_DIR/registry.log" >&2; exit 1; }
fi

"$PY" "$(dirname "$0")/images/build.py" "$STATE/images" > "$STATE/images/digests.txt"
pushed=0
while read -r name_tag digest; do
    name=${name_tag%%:*}
    tag=${name_tag##*:}
    have=$(curl -fsI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$registry_url/v2/$name/manifests/$tag" 2>/dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' || true)
    if [ "$have" != "$digest" ]; then
        skopeo copy --quiet --dest-tls-verify=false "oci:$STATE/images/$name-$tag:$tag" \
            "docker://${REGISTRY_ADDR/0.0.0.0/127.0.0.1}/$name:$tag"
        pushed=$((pushed + 1))
    fi
done < "$STATE/images/digests.txt"
echo "setup-platform: images pyk8s.local/{pause:1,busybox:1,web:1,web:2} served at $registry_url ($pushed pushed now)"
