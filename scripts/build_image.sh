#!/usr/bin/env bash
# Build the tiny test guest, var/guest/kumo-tiny.qcow2, from Debian packages only: no cloud image
# is downloaded. It boots in seconds under TCG and proves that a guest got its config drive:
#
#   KUMO TINY GUEST
#   hostname=<hostname from openstack/latest/meta_data.json>
#   instance=<uuid>
#
# on the serial console (the console log) and on the VGA screen (VNC), then shells on both. User
# data that is a script (#!) runs in the background with its output on the serial console.
#
# Shape (see the platform notes): a whole-disk FAT16 "superfloppy" with no partition table and the
# SYSLINUX boot sector, holding Debian's cloud kernel, an initramfs (static busybox, an init script
# and the few kernel modules it needs for the config drive) and syslinux.cfg. No loop devices or
# mounts: mkfs.vfat and mcopy work on the image file, `syslinux --install` writes the boot sector.
#
#   scripts/build_image.sh [--force] [OUTPUT]     (default var/guest/kumo-tiny.qcow2)
#
# An existing image newer than this script is kept unless --force. The kernel package is kept
# under var/cache/kumo-tiny/, so later builds need no network at all.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

force=0
output=var/guest/kumo-tiny.qcow2
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -*) die "unknown option: $arg (expected --force)" ;;
        *) output="$arg" ;;
    esac
done

if [ "$force" -eq 0 ] && [ -s "$output" ] && [ "$output" -nt "$0" ]; then
    log "$output is up to date (--force rebuilds it)"
    exit 0
fi

apt_install busybox-static syslinux syslinux-common extlinux mtools dosfstools cpio qemu-utils

cache=var/cache/kumo-tiny
mkdir -p "$cache" "$(dirname "$output")"
work=$(mktemp -d "${TMPDIR:-/tmp}/kumo-tiny.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the kernel: linux-image-cloud-amd64 is a metapackage, the kernel is what it depends on ---
kernel_deb=$(find "$cache" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' | sort -V | tail -n 1)
if [ -z "$kernel_deb" ]; then
    kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
    if [ -z "$kernel_pkg" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
        kernel_pkg=$(apt-cache depends linux-image-cloud-amd64 |
            sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
    fi
    [ -n "$kernel_pkg" ] || die "cannot find the package behind linux-image-cloud-amd64"
    log "downloading $kernel_pkg"
    # apt drops privileges to _apt for downloads, which needs a directory that user can write.
    (cd "$work" && apt-get download -q "$kernel_pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    found=$(find "$work" -maxdepth 1 -name "${kernel_pkg}_*.deb" | head -n 1)
    [ -n "$found" ] || die "apt-get download $kernel_pkg produced no package"
    mv "$found" "$cache/"
    kernel_deb="$cache/$(basename "$found")"
fi
log "kernel from $(basename "$kernel_deb")"
dpkg-deb -x "$kernel_deb" "$work/kernel"
vmlinuz=$(find "$work/kernel/boot" -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in $kernel_deb"
modules_dir=$(find "$work/kernel/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)

# --- the initramfs ---
root="$work/initramfs"
mkdir -p "$root"/{bin,dev,etc/acpi/PWRF,lib/modules,mnt/config,proc,sys,tmp,root,var/log,var/run}
mkdir -p "$root/usr/share/udhcpc"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Modules in load order, dependencies first. The package has no modules.dep (depmod writes it at
# install time), so each module's own "depends=" field is read instead.
load_order="$root/lib/modules/load-order"
: >"$load_order"
add_module() {
    local name="$1" file deps dep
    grep -qxF "$name" "$load_order" && return 0
    file=$(find "$modules_dir/kernel" -name "$name.ko" | head -n 1)
    [ -n "$file" ] || die "module $name is not in the kernel package"
    deps=$(grep -a -o 'depends=[a-z0-9_,-]*' "$file" | head -n 1 | cut -d= -f2)
    for dep in ${deps//,/ }; do
        add_module "$dep"
    done
    cp "$file" "$root/lib/modules/"
    printf '%s\n' "$name" >>"$load_order"
}
# The config drive is an IDE cdrom (ata_piix, sr_mod) with ISO 9660 on it; button and evdev let
# busybox's acpid see the ACPI power button, so a graceful shutdown from libvirt works. The root
# disk (vda) and the NIC (eth0) are virtio devices: virtio_pci finds them, virtio_blk and
# virtio_net drive them (the platform notes: the cloud kernel builds all three as modules).
for module in ata_piix sr_mod isofs button evdev virtio_pci virtio_blk virtio_net; do
    add_module "$module"
done

cat >"$root/init" <<'EOF'
#!/bin/sh
# PID 1 of the tiny guest: mount the kernel file systems, load the config drive's modules, then
# hand over to busybox init (/etc/inittab), which runs /etc/rc and respawns the shells.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
    insmod "/lib/modules/$module.ko" 2>/dev/null
done </lib/modules/load-order
exec /bin/init
EOF
chmod 0755 "$root/init"

cat >"$root/etc/rc" <<'EOF'
#!/bin/sh
# Find the config drive (label config-2), read who we are, and say it on both consoles.
say() {
    echo "$*" >/dev/ttyS0
    echo "$*" >/dev/tty1
}
device=""
i=0
while [ $i -lt 50 ] && [ -z "$device" ]; do
    device=$(findfs LABEL=config-2 2>/dev/null)
    [ -z "$device" ] && [ -b /dev/sr0 ] && device=/dev/sr0
    [ -z "$device" ] && sleep 0.1
    i=$((i + 1))
done
hostname_=unknown
instance=unknown
if [ -n "$device" ] && mount -t iso9660 -o ro "$device" /mnt/config 2>/dev/null; then
    meta=/mnt/config/openstack/latest/meta_data.json
    value=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' "$meta")
    [ -n "$value" ] && hostname_="$value"
    value=$(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' "$meta")
    [ -n "$value" ] && instance="$value"
fi
hostname "$hostname_"
acpid -c /etc/acpi -l /var/log/acpid.log
say ""
say "KUMO TINY GUEST"
say "hostname=$hostname_"
say "instance=$instance"
# User data that is a script (#! on its first line) runs in the background, its output on the
# serial console, as cloud-init would run it; anything else is left alone.
user_data=/mnt/config/openstack/latest/user_data
if [ -f "$user_data" ] && [ "$(head -c 2 "$user_data")" = "#!" ]; then
    cp "$user_data" /tmp/user-data
    chmod 0755 /tmp/user-data
    setsid /tmp/user-data </dev/null >/dev/ttyS0 2>&1 &
fi
EOF
chmod 0755 "$root/etc/rc"

# busybox's udhcpc only reports a lease; this script applies it (address, default route, MTU).
# Nothing runs udhcpc yet: the guest's networking will.
cat >"$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        ;;
esac
exit 0
EOF
chmod 0755 "$root/usr/share/udhcpc/default.script"

cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/rc
ttyS0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/bin/poweroff -f
::shutdown:/bin/umount -a -r
EOF

# busybox acpid runs /etc/acpi/<event> for the power button: PWRF/00000080.
cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
poweroff
EOF
chmod 0755 "$root/etc/acpi/PWRF/00000080"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -9n \
    >"$work/initrd.gz"

# --- the disk: FAT16 superfloppy with SYSLINUX ---
# no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can miss its ticks
# and panic ("IO-APIC + timer doesn't work!"); virtual machines skip the check (as cloud images do).
cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT kumo
PROMPT 0
TIMEOUT 0
LABEL kumo
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=tty0 console=ttyS0,115200 no_timer_check
EOF
raw="$work/disk.raw"
truncate -s 32M "$raw"
mkfs.vfat -F 16 -n KUMOTINY "$raw" >/dev/null
mcopy -i "$raw" "$vmlinuz" ::vmlinuz
mcopy -i "$raw" "$work/initrd.gz" ::initrd.gz
mcopy -i "$raw" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --install "$raw"

tmp_output="$output.tmp.$$"
qemu-img convert -f raw -O qcow2 -c "$raw" "$tmp_output"
mv -f "$tmp_output" "$output"
log "built $output ($(du -h "$output" | cut -f1))"
