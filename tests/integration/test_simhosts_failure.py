"""A simulated host's failure and return (simhosts fail / fence / recover), on two real hosts with
their own libvirtds and a real qemu guest: what dies, what can no longer be reached, what the host
has when it comes back, and that `down` still leaves nothing.

Needs root (namespaces, libvirtd) and libvirtd, qemu and busybox (scripts/setup.sh --test).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import simhosts
from simhosts import SimHost
from simhosts.hosts import BASE
from tests.integration.dataplane import BUSYBOX, NEEDS_BUSYBOX, NEEDS_ROOT

pytestmark = [
    NEEDS_ROOT,
    NEEDS_BUSYBOX,
    pytest.mark.skipif(not Path("/usr/sbin/libvirtd").exists() or shutil.which("virsh") is None
                       or shutil.which("qemu-system-x86_64") is None,
                       reason="libvirtd, virsh and qemu are missing: scripts/setup.sh --test"),
]

ROOT = Path(__file__).resolve().parents[2]
# A guest that needs nothing: no disk, no network; the firmware finds nothing to boot and waits.
# Marked autostart, so that a libvirtd starting it on its own would show.
GUEST = """<domain type='qemu'>
  <name>victim</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
"""


def simhosts_cli(tag: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simhosts", "--tag", tag, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def virsh(host: SimHost, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", host.uri, *args], capture_output=True, text=True,
                          timeout=30, check=False)


def pings(source: SimHost, address: str, tries: int = 3) -> bool:
    for _ in range(tries):
        result = subprocess.run(["ip", "netns", "exec", source.netns, BUSYBOX, "ping", "-c", "1",
                                 "-W", "1", address], capture_output=True, check=False)
        if result.returncode == 0:
            return True
    return False


def carrier(host: SimHost, dev: str) -> bool:
    shown = subprocess.run(["ip", "-n", host.netns, "-o", "link", "show", dev],
                           capture_output=True, text=True, check=True).stdout
    return "NO-CARRIER" not in shown and "LOWERLAYERDOWN" not in shown


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def in_mount_namespaces(namespaces: set[str]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "mnt") in namespaces and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def tag() -> Iterator[str]:
    tag = f"ft{secrets.token_hex(2)}"
    try:
        yield tag
    finally:
        simhosts.down(tag)


def test_a_failed_host_dies_is_cut_off_and_comes_back_with_its_guest_shut_off(tag: str) -> None:
    one, two = simhosts.up(tag, 2)
    libvirtd = one.libvirtd_pid()
    assert libvirtd is not None
    xml = one.dir / "victim.xml"
    xml.write_text(GUEST)
    for step in (["define", str(xml)], ["autostart", "victim"], ["start", "victim"]):
        assert virsh(one, *step).returncode == 0, virsh(one, *step).stderr
    qemu = int((one.dir / "run" / "qemu" / "victim.pid").read_text())
    # Something the agent would have started: in the host's mount namespace, not its network one.
    helper = subprocess.Popen(["nsenter", "-t", str(libvirtd), "-m", "--", "sleep", "600"])
    try:
        assert pings(two, one.ip)
        started = time.monotonic()
        failed = simhosts_cli(tag, "fail", one.name)
        took = time.monotonic() - started
        time.sleep(0.2)
        assert helper.poll() == -signal.SIGKILL
    finally:
        helper.kill()
        helper.wait()

    assert failed.returncode == 0, failed.stderr
    assert took < 2.5, f"fail took {took:.1f} s"
    assert not alive(libvirtd) and not alive(qemu)
    assert virsh(one, "version").returncode != 0
    assert not pings(two, one.ip, tries=2)
    assert not carrier(one, "eth0") and not carrier(one, "ext0")
    assert f"{one.name} {one.ip} failed" in simhosts_cli(tag, "status").stdout
    assert virsh(two, "version").returncode == 0, "the other host goes on"

    fenced = simhosts_cli(tag, "fence", one.name)
    assert fenced.returncode == 0, fenced.stderr

    recovered = simhosts_cli(tag, "recover", one.name)
    assert recovered.returncode == 0, recovered.stderr
    assert virsh(one, "version").returncode == 0
    assert pings(two, one.ip)
    assert carrier(one, "eth0") and carrier(one, "ext0")
    assert virsh(one, "domstate", "victim").stdout.strip() == "shut off"
    assert f"{one.name} {one.ip} up" in simhosts_cli(tag, "status").stdout

    namespaces = {ns for host in (one, two)
                  for ns in (host.dir / "mount-namespaces").read_text().split()}
    simhosts.down(tag)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert f"kumo-{tag}-" not in netns
    assert in_mount_namespaces(namespaces) == []
    assert not (BASE / tag).exists()


def test_fencing_a_host_that_does_not_exist_is_refused() -> None:
    # A fencing driver must never be told "fenced" about a host simhosts knows nothing of.
    answer = simhosts_cli(f"ft{secrets.token_hex(2)}", "fence", "compute-1")
    assert answer.returncode != 0
    assert "no host 'compute-1'" in answer.stderr
