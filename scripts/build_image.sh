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
# After the banner, never before it (a guest with no DHCP server or no NIC boots just the same):
# every ethN asks for a lease with busybox udhcpc in the background, and the lease is applied
# (address, MTU, default route, classless static routes, DNS) and said on the consoles:
#
#   DHCP bound eth0 ip=10.0.2.15 mask=24 router=10.0.2.2 mtu=1500 dns=10.0.2.3 routes=
#
# and Debian's dropbear listens on port 22: root only, by key only, the keys being the config
# drive's public_keys (or, with no config drive, the metadata service's at 169.254.169.254).
# `ssh root@<ip> hostname` answers; /etc/kumo-instance holds the instance uuid.
#
# Shape (see the platform notes): a whole-disk FAT16 "superfloppy" with no partition table and the
# SYSLINUX boot sector, holding Debian's cloud kernel, an initramfs (static busybox, an init script
# and the few kernel modules it needs for the config drive) and syslinux.cfg. No loop devices or
# mounts: mkfs.vfat and mcopy work on the image file, `syslinux --install` writes the boot sector.
#
#   scripts/build_image.sh [--force] [OUTPUT]     (default var/guest/kumo-tiny.qcow2)
#
# An existing image newer than this script is kept unless --force. The kernel and dropbear
# packages are kept under var/cache/kumo-tiny/, so later builds need no network at all.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

build_output var/guest/kumo-tiny.qcow2 "$@"

# libc6, libcrypt1, libgmp10 and zlib1g: dropbear's shared libraries are copied from this host.
apt_install busybox-static syslinux syslinux-common extlinux mtools dosfstools cpio qemu-utils \
    libc6 libcrypt1 libgmp10 zlib1g

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

# The newest cached package NAME_*.deb, downloaded once if there is none.
cached_deb() {
    local name="$1" deb found
    deb=$(find "$cache" -maxdepth 1 -name "${name}_*.deb" | sort -V | tail -n 1)
    if [ -z "$deb" ]; then
        log "downloading $name"
        (cd "$work" && apt-get download -q "$name" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
        found=$(find "$work" -maxdepth 1 -name "${name}_*.deb" | head -n 1)
        if [ -z "$found" ]; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
            (cd "$work" && apt-get download -q "$name" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
            found=$(find "$work" -maxdepth 1 -name "${name}_*.deb" | head -n 1)
        fi
        [ -n "$found" ] || die "apt-get download $name produced no package"
        mv "$found" "$cache/"
        deb="$cache/$(basename "$found")"
    fi
    printf '%s\n' "$deb"
}
# dropbear-bin is linked against libtomcrypt and libtommath, which a host seldom has: those come
# from their packages too, the rest (libc, libcrypt, libgmp, libz) from this host's /lib.
for package in dropbear-bin libtomcrypt1 libtommath1; do
    dpkg-deb -x "$(cached_deb "$package")" "$work/dropbear"
done
dpkg-deb -x "$kernel_deb" "$work/kernel"
vmlinuz=$(find "$work/kernel/boot" -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in $kernel_deb"
modules_dir=$(find "$work/kernel/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)

# --- the initramfs ---
root="$work/initramfs"
mkdir -p "$root"/{bin,dev,etc/acpi/PWRF,etc/dropbear,lib/modules,mnt/config,proc,sys,tmp,root,var/log,var/run}
mkdir -p "$root/usr/share/udhcpc" "$root/lib64" "$root/lib/x86_64-linux-gnu"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# dropbear and dropbearkey with every library ldd finds for them, each under its soname in the
# loader's default directory (there is no ld.so.cache), and the loader where the binaries want it.
cp "$work/dropbear/usr/sbin/dropbear" "$work/dropbear/usr/bin/dropbearkey" "$root/bin/"
for binary in dropbear dropbearkey; do
    LD_LIBRARY_PATH="$work/dropbear/usr/lib/x86_64-linux-gnu" ldd "$root/bin/$binary"
done | while read -r soname arrow path _; do
    case "$soname" in
        linux-vdso.so.*) ;;
        /*) cp -L "$soname" "$root/lib64/$(basename "$soname")" ;;
        *)
            [ "$arrow" = "=>" ] && [ -f "$path" ] || die "ldd: $soname not found for dropbear"
            cp -L "$path" "$root/lib/x86_64-linux-gnu/$soname"
            ;;
    esac
done
[ -x "$root/lib64/ld-linux-x86-64.so.2" ] || die "no dynamic loader found for dropbear"

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
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
while read -r module; do
    insmod "/lib/modules/$module.ko" 2>/dev/null
done </lib/modules/load-order
exec /bin/init
EOF
chmod 0755 "$root/init"

cat >"$root/etc/rc" <<'EOF'
#!/bin/sh
# Find the config drive (label config-2), read who we are, and say it on both consoles. Then the
# network and SSH, in the background: the banner never waits for a DHCP server.
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
meta=""
if [ -n "$device" ] && mount -t iso9660 -o ro "$device" /mnt/config 2>/dev/null; then
    meta=/mnt/config/openstack/latest/meta_data.json
    value=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' "$meta")
    [ -n "$value" ] && hostname_="$value"
    value=$(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' "$meta")
    [ -n "$value" ] && instance="$value"
fi
hostname "$hostname_"
echo "$instance" >/etc/kumo-instance
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
ip link set lo up
send_hostname=""
[ "$hostname_" = unknown ] || send_hostname="-x hostname:$hostname_"
dhcp_on() {
    : >"/var/run/udhcpc.$1.started"
    # No -f: udhcpc goes to the background once bound; -b: or after its first 3 tries (6 s) have
    # failed, then tries again every 20 s, so a DHCP server that comes late is still found.
    udhcpc -i "$1" -s /usr/share/udhcpc/default.script -b -t 3 -T 2 -A 20 \
        -O mtu -O staticroutes $send_hostname </dev/null >/dev/null 2>&1 &
}
for path in /sys/class/net/eth*; do
    [ -e "$path" ] && dhcp_on "${path##*/}"
done
# A NIC plugged in later (openstack server add port/network) asks for its lease too.
(
    while sleep 2; do
        for path in /sys/class/net/eth*; do
            [ -e "$path" ] && [ ! -e "/var/run/udhcpc.${path##*/}.started" ] && dhcp_on "${path##*/}"
        done
    done
) </dev/null >/dev/null 2>&1 &
setsid /etc/kumo-ssh "$meta" </dev/null >/dev/null 2>&1 &
# Up to 5 s for every NIC's first answer (a lease or none) and for sshd, so that when all goes well
# their lines come before the shells' prompts on the consoles; never longer.
i=0
while [ $i -lt 50 ]; do
    waiting=0
    for path in /sys/class/net/eth*; do
        [ -e "$path" ] && [ ! -e "/var/run/udhcpc.${path##*/}.answered" ] && waiting=1
    done
    [ -e /var/run/kumo-ssh.started ] || waiting=1
    [ $waiting -eq 0 ] && break
    sleep 0.1
    i=$((i + 1))
done
EOF
chmod 0755 "$root/etc/rc"

# SSH: a host key made at boot (the root file system is this boot's initramfs), root's keys from
# the config drive, or failing that from the metadata service once the network is up.
cat >"$root/etc/kumo-ssh" <<'EOF'
#!/bin/sh
say() {
    echo "$*" >/dev/ttyS0
    echo "$*" >/dev/tty1
}
# meta_data.json (compact or not: newlines are only whitespace in JSON) → one public key a line.
# Its public_keys object holds only strings, so it ends at the first "}"; each key is the string
# after a `": ` (keys hold no double quotes); \n and \/ are the only escapes that keys have.
public_keys() {
    tr -d '\r\n' <"$1" |
        sed -n 's/.*"public_keys": *{\([^}]*\)}.*/\1/p' |
        grep -o '": *"[^"]*"' |
        sed 's/^": *"//; s/"$//; s/\\\//\//g; s/\\n/\n/g' |
        grep -v '^ *$'
}
install_keys() {
    mkdir -p /root/.ssh
    chmod 0700 /root/.ssh
    public_keys "$1" >/root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
    say "SSH keys for root: $(grep -c . /root/.ssh/authorized_keys) from $2"
}
[ -n "$1" ] && [ -f "$1" ] && install_keys "$1" "the config drive"
key=/etc/dropbear/dropbear_ed25519_host_key
[ -f "$key" ] || dropbearkey -t ed25519 -f "$key" >/dev/null 2>&1
# -s: no password logins at all (root has no password anyway); -m: no motd.
dropbear -s -m -r "$key" -P /var/run/dropbear.pid 2>>/var/log/dropbear.log
say "SSH host key: $(dropbearkey -y -f "$key" | sed -n 's/^\(ssh-[^ ]* [^ ]*\).*/\1/p')"
: >/var/run/kumo-ssh.started
[ -n "$1" ] && [ -f "$1" ] && exit 0
# No config drive: ask the metadata service, a bounded number of times (about two minutes), since
# the lease may come late or there may be no such service at all.
url=http://169.254.169.254/openstack/latest/meta_data.json
i=0
while [ $i -lt 30 ]; do
    # timeout, not wget -T: Debian's static busybox wget crashes with -T (1.35.0-4+deb12u1).
    if timeout 5 wget -q -O /tmp/meta_data.json "$url" 2>/dev/null && [ -s /tmp/meta_data.json ]; then
        install_keys /tmp/meta_data.json "the metadata service"
        if [ "$(hostname)" = unknown ]; then
            value=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' /tmp/meta_data.json)
            [ -n "$value" ] && hostname "$value"
            value=$(sed -n 's/.*"uuid": *"\([^"]*\)".*/\1/p' /tmp/meta_data.json)
            [ -n "$value" ] && echo "$value" >/etc/kumo-instance
        fi
        exit 0
    fi
    sleep 1
    i=$((i + 1))
done
say "SSH keys for root: none (no config drive, no metadata service)"
EOF
chmod 0755 "$root/etc/kumo-ssh"

# busybox's udhcpc only reports a lease; this script applies it. Classless static routes (option
# 121), when the server sends them, replace the router option, as RFC 3442 says.
cat >"$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
say() {
    echo "$*" >/dev/ttyS0
    echo "$*" >/dev/tty1
}
event="$1"
[ "$event" = deconfig ] || : >"/var/run/udhcpc.$interface.answered"
case "$event" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    leasefail)
        # Once per interface: a guest without a DHCP server must not fill its console log.
        if [ ! -e "/var/run/udhcpc.$interface.failed" ]; then
            : >"/var/run/udhcpc.$interface.failed"
            say "DHCP no lease on $interface yet (still asking in the background)"
        fi
        ;;
    bound|renew)
        [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
        # A renewal of the same address keeps it (and the routes through it) in place.
        if ! ip -4 addr show dev "$interface" | grep -qF " $ip/${mask:-24} "; then
            ip addr flush dev "$interface"
            ip addr add "$ip/${mask:-24}" broadcast "${broadcast:-+}" dev "$interface"
        fi
        routes=""
        if [ -n "$staticroutes" ]; then
            # "dest/len gateway dest/len gateway ...": a 0.0.0.0 gateway means on the link.
            set -- $staticroutes
            while [ $# -ge 2 ]; do
                if [ "$2" = 0.0.0.0 ]; then
                    ip route replace "$1" dev "$interface"
                else
                    ip route replace "$1" via "$2" dev "$interface"
                fi
                routes="$routes${routes:+,}$1:$2"
                shift 2
            done
        elif [ -n "$router" ]; then
            ip route replace default via "${router%% *}" dev "$interface"
        fi
        if [ -n "$dns" ]; then
            {
                [ -n "${search:-$domain}" ] && echo "search ${search:-$domain}"
                for server in $dns; do
                    echo "nameserver $server"
                done
            } >/etc/resolv.conf
        fi
        dns_list=$(echo $dns | tr ' ' ',')
        say "DHCP $event $interface ip=$ip mask=${mask:-24} router=${router%% *}" \
            "mtu=$(cat "/sys/class/net/$interface/mtu") dns=$dns_list routes=$routes"
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
printf 'root:x:0:\n' >"$root/etc/group"
printf '/bin/sh\n' >"$root/etc/shells"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"

# Owned by root whoever builds it: dropbear refuses keys under a home it does not trust.
(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -9n \
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
