"""The tiny guest itself (scripts/build_image.sh), booted by plain qemu under TCG: no libvirt, no
control plane. The config drive is the agent's own (compute_agent/config_drive.py) with a public
key in it; the NIC is qemu's user-mode network, whose DHCP server leases 10.0.2.15, with the
guest's port 22 forwarded to a free port on 127.0.0.1.

What a user would notice: the guest takes its lease and says so on the console, its SSH host key
is on the console too (and is the key it answers with), and `ssh -i key root@…` runs commands and
opens a shell, while another key and passwords are refused.

Skipped only without qemu-system-x86_64 or the OpenSSH client (CI has both: KUMO_NO_SKIPS fails
the skip). One guest; the boot-to-SSH time is printed, not asserted.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compute_agent import config_drive
from compute_agent import messages as msg
from tests.e2e.conftest import BANNER, BOOT_TIMEOUT

pytestmark = pytest.mark.e2e

QEMU = "qemu-system-x86_64"


@dataclass
class Guest:
    hostname: str
    instance_uuid: str
    port: int
    key: Path
    console: Path
    known_hosts: Path
    booted_at: float

    def ssh(self, *command: str, key: Path | None = None, options: tuple[str, ...] = (),
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(key or self.key),
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
             "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
             "-o", "LogLevel=ERROR", *options, "root@127.0.0.1", *command],
            input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def console_text(console: Path) -> str:
    try:
        return console.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_console(console: Path, pattern: str, qemu: subprocess.Popen[str]) -> re.Match[str]:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(pattern, console_text(console))
        if found:
            return found
        if qemu.poll() is not None:
            error = qemu.stderr.read() if qemu.stderr else ""
            raise AssertionError(f"qemu exited ({qemu.returncode}): {error}")
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not on the console after {BOOT_TIMEOUT:.0f} s; it ends "
                         f"with:\n{console_text(console)[-1500:]}")


@pytest.fixture
def guest(guest_image: Path, tmp_path: Path) -> Iterator[Guest]:
    for tool in (QEMU, "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (qemu-system-x86, openssh-client)")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e@kumo", "-f",
                    str(key)], check=True, timeout=30)
    instance_uuid = str(uuid.uuid4())
    hostname = f"tiny-{instance_uuid[:8]}"
    drive = tmp_path / "config.iso"
    config_drive.build(drive, msg.SpawnRequest(
        request_id="req-image", instance_uuid=instance_uuid, name="image test", hostname=hostname,
        vcpus=1, memory_mb=128, root_gb=1, key_name="e2e",
        key_data=key.with_suffix(".pub").read_text(),
    ))
    port = free_port()
    console = tmp_path / "console.log"
    started = time.monotonic()
    qemu = subprocess.Popen(
        [QEMU, "-accel", "tcg", "-m", "128", "-display", "none", "-monitor", "none",
         "-serial", f"file:{console}",
         "-drive", f"file={guest_image},if=virtio,format=qcow2,snapshot=on",
         "-cdrom", str(drive),
         "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
         "-device", "virtio-net-pci,netdev=n0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_console(console, BANNER, qemu)
        # The host key the guest printed is the only one this client will accept.
        host_key = wait_for_console(console, r"SSH host key: (ssh-ed25519 [A-Za-z0-9+/=]+)", qemu)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.group(1)}\n")
        yield Guest(hostname, instance_uuid, port, key, console, known_hosts, started)
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=20)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait(timeout=20)
        if qemu.stderr:
            qemu.stderr.close()


def test_the_tiny_guest_takes_a_lease_and_lets_in_the_config_drive_key_over_ssh(
    guest: Guest, capsys: pytest.CaptureFixture[str],
) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        result = guest.ssh("hostname")
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    boot_to_ssh = time.monotonic() - guest.booted_at
    assert result.returncode == 0, result.stderr + console_text(guest.console)[-1500:]
    assert result.stdout.strip() == guest.hostname

    console = console_text(guest.console)
    assert f"hostname={guest.hostname}" in console
    assert "DHCP bound eth0 ip=10.0.2.15 mask=24 router=10.0.2.2 mtu=1500 dns=10.0.2.3" in console
    assert "SSH keys for root: 1 from the config drive" in console

    result = guest.ssh("cat", "/etc/kumo-instance")
    assert (result.returncode, result.stdout.strip()) == (0, guest.instance_uuid)
    result = guest.ssh("ip", "-4", "route")
    assert "default via 10.0.2.2 dev eth0" in result.stdout, result.stdout + result.stderr

    # An interactive login gets a shell on a terminal.
    result = guest.ssh(options=("-tt",), stdin="echo shell-$((6 * 7)) $(tty)\nexit\n")
    assert re.search(r"shell-42 /dev/pts/\d+", result.stdout), result.stdout + result.stderr

    # Any other key, and any password, is turned away: public keys are the only method offered.
    other = guest.key.with_name("other")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True, timeout=30)
    result = guest.ssh("hostname", key=other)
    assert result.returncode == 255 and "Permission denied (publickey)" in result.stderr, (
        result.stdout + result.stderr)
    result = guest.ssh("hostname", options=(
        "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password,keyboard-interactive"))
    assert result.returncode == 255 and "Permission denied (publickey)" in result.stderr, (
        result.stdout + result.stderr)

    with capsys.disabled():
        print(f"\n[e2e tiny guest] qemu start to ssh hostname answered: {boot_to_ssh:.1f} s (TCG)")
