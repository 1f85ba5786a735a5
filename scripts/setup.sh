#!/usr/bin/env bash
# Install what Kumo needs on a Debian 12 machine: system packages, the virtualenv, Python packages.
# Idempotent and quick when nothing changed, because `make run` and `make test` call it every time.
#
#   scripts/setup.sh           runtime requirements (requirements.txt)
#   scripts/setup.sh --test    runtime + test requirements (requirements-test.txt)
#   scripts/setup.sh --force   reinstall Python requirements even if their hash is unchanged
#   scripts/setup.sh --rally   also Rally in .venv-rally (requirements-rally.txt), for bench/rally_bench.py
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$KUMO_ROOT"

requirements=requirements.txt
force=0
rally=0
for arg in "$@"; do
    case "$arg" in
        --test) requirements=requirements-test.txt ;;
        --force) force=1 ;;
        --rally) rally=1 ;;
        *) die "unknown argument: $arg (expected --test, --rally or --force)" ;;
    esac
done

# libvirt-python has no wheels: it compiles against libvirt's headers (found with pkg-config), so a
# C compiler and Python's headers are needed as well. libvirt's test driver needs nothing more.
# qemu-utils brings qemu-img, to make a disk image for the first `openstack image create`;
# qemu-system-common brings qemu-storage-daemon, which serves the volume host's volumes over NBD.
base_packages=(libvirt-dev pkg-config libvirt-clients python3-venv gcc libc6-dev python3-dev qemu-utils
               qemu-system-common)
apt_install "${base_packages[@]}"

# libvirtd for qemu:///system without systemd (see the platform notes): fix /dev/kvm's group and
# mode first, or libvirt re-probes qemu on every domain start (a minute each); then the daemons,
# each only if it is not running. Every step is harmless to repeat.
ensure_libvirtd() {
    local daemon i
    if [ -e /dev/kvm ]; then
        getent group kvm >/dev/null || as_root groupadd --system kvm
        as_root chgrp kvm /dev/kvm
        as_root chmod 0660 /dev/kvm
    fi
    for daemon in virtlogd virtlockd libvirtd; do
        if ! pgrep -x "$daemon" >/dev/null 2>&1; then
            log "starting $daemon"
            as_root "$daemon" -d
        fi
    done
    for i in $(seq 1 50); do
        virsh -c qemu:///system version >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "libvirtd was started but qemu:///system does not answer"
}

libvirt_uri="${KUMO_LIBVIRT_URI:-test:///default}"
# The test suite boots real guests too (tests/e2e), so --test brings qemu and libvirtd as well.
[ "$requirements" = requirements-test.txt ] && libvirt_uri="qemu:///system"
case "$libvirt_uri" in
    test://*) ;;
    qemu://*)
        # Real guests: qemu under libvirtd. These machines have no systemd, so the daemons are
        # started by hand (ensure_libvirtd in lib.sh) when they are not running already.
        apt_install libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
        ensure_libvirtd
        ;;
    *) log "note: unknown libvirt URI $libvirt_uri; installing nothing for it" ;;
esac

# Simulated hosts (`make run HOSTS=3`, the multi-host tests): a libvirtd of their own each, in
# namespaces made with ip(8) and unshare/nsenter (util-linux). The machine's own libvirtd is not
# needed for them and is not started for them. Their data plane (--network-driver linuxbridge,
# compute_agent/network): dnsmasq (DHCP), iptables-legacy and ebtables (security groups, both
# from the iptables package), conntrack (dropping a narrowed rule's connections); the data-plane
# tests play guests with busybox's udhcpc and ping.
if [ "${HOSTS:-0}" != 0 ] || [ "$requirements" = requirements-test.txt ]; then
    # libvirt-daemon-driver-lxc: container hosts (LXC_HOSTS=M, tests/e2e/test_lxc.py).
    apt_install libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-daemon-driver-lxc \
        qemu-system-x86 qemu-utils \
        iproute2 util-linux dnsmasq-base iptables conntrack busybox-static
fi

# The browser tests (tests/e2e/test_console_browser.py) drive Debian's Chromium through Playwright;
# Playwright's own browser download is never used (it cannot be fetched here).
[ "$requirements" = requirements-test.txt ] && apt_install chromium

# The metrics test (tests/integration/test_metrics_scrape.py) runs Debian's Prometheus against a
# test stack's /metrics, on a loopback port of its own (the packaged service is never started).
[ "$requirements" = requirements-test.txt ] && apt_install prometheus

# A virtualenv whose interpreter was removed (e.g. a pyenv version uninstalled) is rebuilt.
if [ -e .venv ] && ! .venv/bin/python -c 'pass' >/dev/null 2>&1; then
    log "the virtualenv in .venv is broken; recreating it"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    python=$(command -v python3 || true)
    [ -n "$python" ] || die "python3 not found (python3-venv should have installed it)"
    log "creating .venv with $python ($("$python" --version 2>&1))"
    "$python" -m venv .venv
fi

# A requirements file and every file it pulls in with -r/-c, so an edit to either is noticed.
requirement_files() {
    local file="$1" dir include
    dir=$(dirname "$file")
    printf '%s\n' "$file"
    sed -nE 's/^[[:space:]]*(-r|--requirement|-c|--constraint)[[:space:]=]+([^[:space:]]+).*/\2/p' \
        "$file" | while read -r include; do requirement_files "$dir/$include"; done
}

# The interpreter's version is part of the hash: a new Python needs its packages reinstalled.
requirements_hash() {
    {
        .venv/bin/python -c 'import sys; print(sys.version)'
        requirement_files "$1" | while read -r f; do cat "$f"; done
    } | sha256sum | cut -d' ' -f1
}

stamp_file() { printf '.venv/.kumo-installed-%s.sha256' "$(basename "$1")"; }

stamp=$(stamp_file "$requirements")
wanted=$(requirements_hash "$requirements")
if [ "$force" -eq 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    log "installing Python requirements from $requirements"
    PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q -r "$requirements"
    # Whatever the file included is now installed too; stamp those so they are not redone.
    requirement_files "$requirements" | while read -r f; do
        requirements_hash "$f" >"$(stamp_file "$f")"
    done
fi

# Ansible for tests/compat/test_ansible.py, in a virtualenv of its own (as Tempest has): the
# openstack.cloud collection the ansible package ships reads openstack.version, which openstacksdk
# stopped importing in 4.15, while the openstack client in .venv needs a newer openstacksdk.
# requirements-ansible.txt pins the versions that work together.
if [ "$requirements" = requirements-test.txt ]; then
    if [ -e .venv-ansible ] && ! .venv-ansible/bin/python -c 'pass' >/dev/null 2>&1; then
        rm -rf .venv-ansible
    fi
    ansible_stamp=.venv-ansible/.kumo-installed.sha256
    ansible_wanted=$({ .venv/bin/python -c 'import sys; print(sys.version)'
                       cat requirements-ansible.txt; } | sha256sum | cut -d' ' -f1)
    if [ "$force" -eq 1 ] || [ "$(cat "$ansible_stamp" 2>/dev/null)" != "$ansible_wanted" ]; then
        log "installing Ansible and its openstacksdk into .venv-ansible (requirements-ansible.txt)"
        [ -x .venv-ansible/bin/python ] || .venv/bin/python -m venv .venv-ansible
        PIP_DISABLE_PIP_VERSION_CHECK=1 .venv-ansible/bin/python -m pip install -q \
            -r requirements-ansible.txt
        printf '%s\n' "$ansible_wanted" >"$ansible_stamp"
    fi
fi

# Rally (bench/rally_bench.py, tests/compat/test_rally.py) only when asked for: rally-openstack
# pulls about 130 packages (80 s with a warm pip cache, 160 s cold on the 2-CPU development
# machine), more than every `make test` should pay; requirements-rally.txt says why it is apart.
if [ "$rally" -eq 1 ]; then
    if [ -e .venv-rally ] && ! .venv-rally/bin/python -c 'pass' >/dev/null 2>&1; then
        rm -rf .venv-rally
    fi
    rally_stamp=.venv-rally/.kumo-installed.sha256
    rally_wanted=$({ .venv/bin/python -c 'import sys; print(sys.version)'
                     cat requirements-rally.txt; } | sha256sum | cut -d' ' -f1)
    if [ "$force" -eq 1 ] || [ "$(cat "$rally_stamp" 2>/dev/null)" != "$rally_wanted" ]; then
        log "installing Rally and rally-openstack into .venv-rally (requirements-rally.txt)"
        [ -x .venv-rally/bin/python ] || .venv/bin/python -m venv .venv-rally
        PIP_DISABLE_PIP_VERSION_CHECK=1 .venv-rally/bin/python -m pip install -q \
            -r requirements-rally.txt
        printf '%s\n' "$rally_wanted" >"$rally_stamp"
    fi
fi

# The browser's libraries (package.json), from the npm registry into node_modules/: noVNC for the
# console page (consoles/), htmx and Chart.js for the dashboard (cloud/dashboard/). They are
# dependencies, never copies in the repository. Installed again when one is missing or
# package-lock.json changed since the last install (npm keeps its copy in node_modules/).
npm_needed=0
for file in node_modules/@novnc/novnc/core/rfb.js node_modules/htmx.org/dist/htmx.min.js \
            node_modules/chart.js/dist/chart.umd.min.js; do
    [ -f "$file" ] || npm_needed=1
done
[ package-lock.json -nt node_modules/.package-lock.json ] && npm_needed=1
if [ "$npm_needed" -eq 1 ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    log "installing the browser libraries (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
fi
