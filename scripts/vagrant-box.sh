#!/usr/bin/env bash
# Builds the local Vagrant box `pyk8s/debian12` for the libvirt provider: no box can be
# downloaded here (DESIGN.md §4), so Debian 12 is debootstrapped from the apt mirror this
# machine already uses. The box carries what provisioning would otherwise fetch — the
# platform's Debian packages and a wheelhouse of the project's Python dependencies, which
# pip uses through /etc/pip.conf — so VMs on an isolated network provision offline.
# It boots its kernel directly (libvirt kernel/initrd), so the disk is one ext4 file
# system made with `mke2fs -d`: no partition table, boot loader or loop device.
#
# usage: scripts/vagrant-box.sh OUT_DIR   -> OUT_DIR/pyk8s-debian12.box, vmlinuz, initrd.img
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?usage: vagrant-box.sh OUT_DIR}")
WORK=$OUT/build
ROOTFS=$WORK/rootfs
SUITE=bookworm
MIRROR=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
MIRROR=${PYK8S_DEBIAN_MIRROR:-${MIRROR:-http://deb.debian.org/debian}}
DISK_GB=${PYK8S_BOX_DISK_GB:-12}

VAGRANT_KEY=$(find /usr/share/rubygems-integration /usr/share/vagrant /opt/vagrant -path '*keys/vagrant.pub' 2>/dev/null | head -1 || true)
[ -n "$VAGRANT_KEY" ] || { echo "vagrant-box: Vagrant's insecure public key (keys/vagrant.pub) not found; install vagrant" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$ROOTFS"
base=(systemd-sysv linux-image-amd64 openssh-server sudo ifupdown isc-dhcp-client rsync ca-certificates
      python3 python3-venv)
read -r -a platform <<< "$(scripts/setup-platform.sh --list-packages)"
include=$(IFS=,; echo "${base[*]},${platform[*]}")
echo "vagrant-box: debootstrap $SUITE from $MIRROR"
debootstrap --include="$include" "$SUITE" "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }

# Debian starts the services it installs; pyk8s runs its own containerd, etcd and registry.
for svc in containerd etcd docker-registry; do
    chroot "$ROOTFS" systemctl disable "$svc" > /dev/null 2>&1 || true
done
echo pyk8s-box > "$ROOTFS/etc/hostname"
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" > "$ROOTFS/etc/fstab"
cat > "$ROOTFS/etc/network/interfaces" <<'NET'
auto lo
iface lo inet loopback
auto eth0
iface eth0 inet dhcp
source /etc/network/interfaces.d/*
NET
chroot "$ROOTFS" useradd --create-home --shell /bin/bash vagrant
echo "vagrant ALL=(ALL) NOPASSWD:ALL" > "$ROOTFS/etc/sudoers.d/vagrant"
chmod 0440 "$ROOTFS/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$ROOTFS/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$VAGRANT_KEY" "$ROOTFS/home/vagrant/.ssh/authorized_keys"
echo "UseDNS no" > "$ROOTFS/etc/ssh/sshd_config.d/vagrant.conf"

# The project's Python dependencies, for an offline `scripts/bootstrap.sh` in the VM.
echo "vagrant-box: wheelhouse of the project's dependencies"
wheels=$ROOTFS/var/cache/pyk8s-wheels
.venv/bin/python -m pip wheel -q --disable-pip-version-check --wheel-dir "$wheels" setuptools wheel '.[dev]'
rm -f "$wheels"/pyk8s-*.whl   # the project itself is installed from the synced checkout
printf '[global]\nfind-links = /var/cache/pyk8s-wheels\nno-index = true\n' > "$ROOTFS/etc/pip.conf"

kernel=$(ls "$ROOTFS"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$ROOTFS"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$OUT/vmlinuz"
cp "$initrd" "$OUT/initrd.img"

echo "vagrant-box: disk image (${DISK_GB} GB, sparse)"
rm -f "$WORK/root.raw"
mke2fs -q -t ext4 -L root -d "$ROOTFS" "$WORK/root.raw" "${DISK_GB}G"
qemu-img convert -O qcow2 "$WORK/root.raw" "$WORK/box.img"
rm -f "$WORK/root.raw"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$DISK_GB" > "$WORK/metadata.json"
# The box's own Vagrantfile: boot the kernel directly, with classic interface names so
# that Vagrant's Debian network configuration finds eth1 for the private network.
cat > "$WORK/Vagrantfile" <<VF
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = "$OUT/vmlinuz"
    lv.initrd = "$OUT/initrd.img"
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 biosdevname=0"
  end
end
VF
tar -C "$WORK" -czf "$OUT/pyk8s-debian12.box" metadata.json Vagrantfile box.img
rm -rf "$ROOTFS" "$WORK/box.img"
echo "vagrant-box: $OUT/pyk8s-debian12.box"
