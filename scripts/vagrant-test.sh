#!/usr/bin/env bash
# `make vagrant-test`: boots the real Vagrantfile (control plane + one worker) under QEMU
# emulation with the locally built box, and checks the cluster from the host with kubectl:
# the worker Ready, a Deployment running on it with its image pulled from the control
# plane's registry, its Service answering inside the worker VM. Kept out of `make test`
# and CI (expect the better part of an hour under emulation). Where libvirt or QEMU cannot
# be installed or started, it says so and skips (exit 0, "SKIPPED: <reason>").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BOX_NAME=pyk8s/debian12
BOX_DIR=${PYK8S_BOX_DIR:-/var/lib/pyk8s/vagrant-box}
export VAGRANT_DEFAULT_PROVIDER=libvirt

skip() { echo "vagrant-test: SKIPPED: $*"; exit 0; }
say() { echo "vagrant-test: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (libvirtd, debootstrap)"

packages=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
          debootstrap dnsmasq-base e2fsprogs)
missing=()
for pkg in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } > /tmp/vagrant-test-apt.log 2>&1 ||
        skip "could not install ${missing[*]} (see /tmp/vagrant-test-apt.log)"
fi
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not available"

# No systemd here (DESIGN.md §4): virtlogd and libvirtd are started by hand when not running.
if ! virsh -c qemu:///system version > /dev/null 2>&1; then
    pgrep -x virtlogd > /dev/null || virtlogd -d
    pgrep -x libvirtd > /dev/null || libvirtd -d
    for _ in $(seq 1 30); do virsh -c qemu:///system version > /dev/null 2>&1 && break; sleep 1; done
fi
virsh -c qemu:///system version > /dev/null 2>&1 || skip "libvirtd does not answer on qemu:///system"
if ! virsh -c qemu:///system pool-info default > /dev/null 2>&1; then
    mkdir -p /var/lib/libvirt/images
    virsh -c qemu:///system pool-define-as default dir --target /var/lib/libvirt/images > /dev/null
    virsh -c qemu:///system pool-start default > /dev/null
fi

if ! vagrant box list 2>/dev/null | grep -q "^$BOX_NAME "; then
    [ -f "$BOX_DIR/pyk8s-debian12.box" ] || scripts/vagrant-box.sh "$BOX_DIR"
    vagrant box add --force --name "$BOX_NAME" "$BOX_DIR/pyk8s-debian12.box"
fi

# The real Vagrantfile, sized for emulation: one worker, isolated networks (the box is offline).
export PYK8S_BOX=$BOX_NAME PYK8S_WORKERS=1 PYK8S_QEMU_EMULATION=1 PYK8S_ISOLATED=1
export PYK8S_CPUS=${PYK8S_CPUS:-1} PYK8S_MEMORY_MB=${PYK8S_MEMORY_MB:-2048} PYK8S_PROXY_MODE=nftables
cd "$ROOT/vagrant"
cleanup() { say "destroying the VMs"; vagrant destroy -f > /dev/null 2>&1 || true; }
trap cleanup EXIT
start=$(date +%s)
vagrant up --provider=libvirt
say "VMs provisioned in $(( $(date +%s) - start )) s"

KUBECONFIG=$ROOT/vagrant/.shared/admin.kubeconfig
k() { "$ROOT/.venv/bin/kubectl" --kubeconfig "$KUBECONFIG" "$@"; }
for _ in $(seq 1 300); do
    k get node worker1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True && break
    sleep 2
done
k get nodes -o wide
k create deployment hello --image=pyk8s.local/web:1 --port=8080
k expose deployment hello --port=80 --target-port=8080
k rollout status deployment/hello --timeout=900s
k get pods -o wide
pod=$(k get pods -l app=hello -o jsonpath='{.items[0].metadata.name}')
ip=$(k get service hello -o jsonpath='{.spec.clusterIP}')
answer=""
for _ in $(seq 1 30); do
    answer=$(vagrant ssh worker1 -c "curl -fs --max-time 5 http://$ip/" 2>/dev/null | tr -d '\r') || true
    [ "$answer" = "$pod" ] && break
    sleep 2
done
if [ "$answer" != "$pod" ]; then
    echo "vagrant-test: FAILED: the Service $ip answered '$answer', expected '$pod'; the worker's view:" >&2
    vagrant ssh worker1 -c "ip route; sudo nft list ruleset | head -60; sudo journalctl -u pyk8s-proxy --no-pager | tail -30; curl -sv --max-time 5 http://$ip/" >&2 || true
    exit 1
fi
say "PASSED: worker1 Ready, hello Running on it, ClusterIP $ip answered by $pod inside the worker VM"
