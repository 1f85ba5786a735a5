"""Is KVM usable on this host? Asked once at start-up, by checking and then trying it.

/dev/kvm existing proves little. On our machines (see the platform notes) it is there and opens,
but it is served by kvm_pvm, a software KVM for hosts without hardware virtualisation that runs
only guests built for it: an ordinary guest dies in its boot loader with "KVM internal error …
emulation failure". So KVM counts as usable only when

1. /dev/kvm can be opened for reading and writing,
2. the CPU offers hardware virtualisation (the vmx or svm flag in /proc/cpuinfo), and
3. a probe guest runs: qemu with KVM boots a 512-byte boot sector that calls the BIOS and
   writes a byte to the serial port; qemu reports KVM failures on stderr (it stops the guest
   rather than exiting), so the probe needs the byte and no such report.

Otherwise the agent uses TCG (`<domain type='qemu'>`), which always works, only slower. The guest
CPU is never host-passthrough: a guest must not depend on the exact host it was started on.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

LOG = logging.getLogger(__name__)

KVM_DEVICE = "/dev/kvm"
CPUINFO = "/proc/cpuinfo"
QEMU_SYSTEM = os.environ.get("KUMO_QEMU_SYSTEM", "qemu-system-x86_64")
PROBE_SECONDS = 5.0
_KVM_FAILURES = ("KVM internal error", "emulation failure", "failed to initialize kvm")
_PROBE_BYTE = b"K"

# 16-bit boot sector: mov ah,0; int 13h (a BIOS call); mov dx,3f8h; mov al,'K'; out dx,al; hlt; jmp $-1
_BOOT_CODE = bytes.fromhex("b400cd13baf803b04bee f4ebfd".replace(" ", ""))
PROBE_BOOT_SECTOR = _BOOT_CODE + bytes(510 - len(_BOOT_CODE)) + b"\x55\xaa"


def kvm_device_present(device: str | None = None) -> bool:
    device = device or KVM_DEVICE
    return os.path.exists(device) and os.access(device, os.R_OK | os.W_OK)


def hardware_virtualisation(cpuinfo: str | None = None) -> bool:
    try:
        text = Path(cpuinfo or CPUINFO).read_text()
    except OSError:
        return False
    return re.search(r"^flags\s*:.*\b(vmx|svm)\b", text, re.MULTILINE) is not None


def probe_guest_runs(seconds: float = PROBE_SECONDS) -> bool:
    with tempfile.TemporaryDirectory(prefix="kumo-kvm-probe-") as scratch:
        disk = Path(scratch) / "boot.img"
        disk.write_bytes(PROBE_BOOT_SECTOR)
        serial = Path(scratch) / "serial.out"
        command = [
            QEMU_SYSTEM, "-accel", "kvm", "-machine", "pc", "-m", "16", "-nodefaults",
            "-display", "none", "-monitor", "none", "-serial", f"file:{serial}", "-no-reboot",
            "-drive", f"file={disk},format=raw,if=ide",
        ]
        try:
            probe = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            LOG.info("KVM probe could not run %s: %s", QEMU_SYSTEM, exc)
            return False
        deadline = time.monotonic() + seconds
        written = b""
        while time.monotonic() < deadline and probe.poll() is None:
            written = serial.read_bytes() if serial.exists() else b""
            if _PROBE_BYTE in written:
                break
            time.sleep(0.05)
        probe.kill()
        _, stderr = probe.communicate()
    errors = stderr.decode(errors="replace")
    if _PROBE_BYTE in written and not any(sign in errors for sign in _KVM_FAILURES):
        return True
    LOG.info("the KVM probe guest did not run: %s", " ".join(errors.split())[:300])
    return False


def kvm_usable() -> bool:
    if not kvm_device_present():
        return False
    if not hardware_virtualisation():
        LOG.info("%s exists but the CPU has no vmx/svm: not using KVM", KVM_DEVICE)
        return False
    return probe_guest_runs()


def detect_domain_type(uri: str) -> str:
    """"kvm" when the URI is a local qemu one and KVM works here, else the URI's plain type.

    A remote qemu URI (qemu+ssh://…) is never probed: this host's /dev/kvm says nothing about it.
    """
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "qemu" and uri.startswith("qemu:///") and kvm_usable():
        return "kvm"
    plain = scheme.split("+", 1)[0]
    if plain in ("test", "qemu"):
        return plain
    raise ValueError(f"no default domain type for libvirt URI {uri!r}; pass one explicitly")
