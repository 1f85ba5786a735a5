"""What the data-plane integration tests (real namespaces, no qemu) need of the machine: root, and
Debian's busybox, dnsmasq and conntrack. One list, so the three tests ask for the same and say why;
CI installs all of it and runs as root (KUMO_NO_SKIPS turns a skip into a failure)."""

from __future__ import annotations

import os
import shutil

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0,
                                reason="namespaces, bridges, iptables and NAT need root")
NEEDS_BUSYBOX = pytest.mark.skipif(
    not os.path.exists(BUSYBOX),
    reason="busybox (udhcpc, ping, nc, wget) is missing: apt-get install busybox-static")
NEEDS_DNSMASQ = pytest.mark.skipif(shutil.which("dnsmasq") is None,
                                   reason="dnsmasq is missing: apt-get install dnsmasq-base")
NEEDS_CONNTRACK = pytest.mark.skipif(shutil.which("conntrack") is None,
                                     reason="conntrack is missing: apt-get install conntrack")
