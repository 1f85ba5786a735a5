#!/usr/bin/env bash
# Build the tiny test container, var/guest/kumo-tiny-ct.tar.gz, from Debian's static busybox: a
# root filesystem for libvirt's LXC driver (issue 19), registered as image kumo-tiny-ct with
# hypervisor_type=lxc, disk_format=raw and container_format=compressed (a gzip'd tar is no disk;
# Glance's "compressed" says the image service does not look inside; see
# compute_agent/container_rootfs.py). Its init says on the console
#
#   kumo-tiny-ct: <hostname> <instance uuid> up
#
# then brings every NIC up with busybox udhcpc (in the background, so a container without a DHCP
# server still comes up), says each lease ("kumo-tiny-ct: address ..."), and waits; SIGTERM (a
# clean stop) ends it saying "kumo-tiny-ct: stopping". After its first lease in each boot it asks
# the metadata service (169.254.169.254, through the lease's option 121 route) for the server's
# user data and, when there is some, runs it with sh, its output on the console
# ("kumo-tiny-ct: running user data"): a container has no config drive.
#
#   scripts/build_ct_image.sh [--force] [OUTPUT]     (default var/guest/kumo-tiny-ct.tar.gz)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

build_output var/guest/kumo-tiny-ct.tar.gz "$@"
apt_install busybox-static

mkdir -p "$(dirname "$output")"
work=$(mktemp -d "${TMPDIR:-/tmp}/kumo-tiny-ct.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,root,run,var/log,usr/share/udhcpc}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"

cat > "$root/sbin/init" <<'INIT'
#!/bin/sh
# kumo-tiny-ct's init (libvirt LXC): the banner, DHCP on every NIC, then wait for SIGTERM.
export PATH=/bin:/sbin
hostname "${KUMO_HOSTNAME:-container}"
mount -t proc proc /proc 2>/dev/null
# /run is per boot (the root filesystem is not): the user data runs again after a reboot.
mount -t tmpfs -o mode=755,size=1m tmpfs /run 2>/dev/null
echo "kumo-tiny-ct: $(hostname) ${KUMO_INSTANCE_UUID:-$LIBVIRT_LXC_UUID} up"
ip link set lo up
for dev in /sys/class/net/*; do
    name=${dev##*/}
    [ "$name" = lo ] && continue
    ip link set "$name" up
    # In the background from the start: init must be listening for SIGTERM (a stop) at once,
    # and udhcpc stays to renew the lease.
    udhcpc -i "$name" -s /usr/share/udhcpc/default.script -O staticroutes -f -t 0 -T 2 \
        >/dev/null 2>&1 &
done
trap 'echo "kumo-tiny-ct: stopping"; exit 0' TERM INT PWR
while :; do sleep 1 & wait $!; done
INIT
cat > "$root/usr/share/udhcpc/default.script" <<'DHCP'
#!/bin/sh
# udhcpc only reports a lease: apply it, and say it on the console.
case "$1" in
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
        # Option 121 ("dest/len gateway ..."; gateway 0.0.0.0: on the link) replaces the router.
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"
            else ip route replace "$1" via "$2" dev "$interface"; fi
            shift 2
        done
    elif [ -n "$router" ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
    : > /etc/resolv.conf
    for server in $dns; do echo "nameserver $server" >> /etc/resolv.conf; done
    echo "kumo-tiny-ct: address $interface $ip/${mask:-24}" > /dev/console
    # The user data, once per boot, from the first lease on.
    if mkdir /run/kumo-user-data 2>/dev/null; then
        (
            i=0
            while [ $i -lt 5 ]; do
                # timeout, not wget -T: Debian's static busybox wget crashes with -T.
                if timeout 5 wget -q -O /run/kumo-user-data/script \
                        http://169.254.169.254/latest/user-data 2>/dev/null; then
                    [ -s /run/kumo-user-data/script ] || exit 0
                    echo "kumo-tiny-ct: running user data" > /dev/console
                    exec sh /run/kumo-user-data/script </dev/null >/dev/console 2>&1
                fi
                sleep 1
                i=$((i + 1))
            done
        ) </dev/null >/dev/null 2>&1 &
    fi ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
DHCP
chmod 755 "$root/sbin/init" "$root/usr/share/udhcpc/default.script"
# Owned by root whoever builds it, and the same bytes for the same inputs.
tar -C "$root" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf - . \
    | gzip -9n > "$work/out.tar.gz"
mv "$work/out.tar.gz" "$output"
log "built $output ($(du -h "$output" | cut -f1))"
