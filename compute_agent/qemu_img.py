"""The few qemu-img operations the agent needs, each naming its formats explicitly.

qemu-img guesses a format it is not told, and a guessed "raw" file whose first bytes are a qcow2
header can point qemu at any file on the host as its backing file. So every call says -f (and -F
for a backing file), and an image from outside is inspected before it is trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from compute_agent.drivers.base import DriverError

QEMU_IMG = os.environ.get("KUMO_QEMU_IMG", "qemu-img")
FORMATS = frozenset({"qcow2", "raw"})
TIMEOUT = 600.0  # a convert of a large disk is slow; nothing here should take longer


class QemuImgError(DriverError):
    pass


def _format(value: str) -> str:
    if value not in FORMATS:
        raise QemuImgError(f"disk format {value!r} is not supported (use one of {sorted(FORMATS)})")
    return value


def _run(*args: str, timeout: float = TIMEOUT) -> str:
    try:
        result = subprocess.run(
            [QEMU_IMG, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise QemuImgError(f"{QEMU_IMG} is not installed (Debian package qemu-utils)") from None
    except subprocess.TimeoutExpired:
        raise QemuImgError(f"qemu-img {args[0]} took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise QemuImgError(f"qemu-img {args[0]} failed: {message[-1] if message else 'no output'}")
    return result.stdout


def info(path: Path, disk_format: str, *, force_share: bool = False) -> dict[str, Any]:
    args = ["info", "-f", _format(disk_format), "--output=json"]
    if force_share:
        args.append("-U")
    return json.loads(_run(*args, os.fspath(path), timeout=60))


def check_standalone(path: Path, disk_format: str) -> int:
    """Refuse an image that refers to other files (a backing file or an external data file);
    return its virtual size in bytes."""
    details = info(path, disk_format)
    if details.get("format") != disk_format:
        raise QemuImgError(f"image is {details.get('format')!r}, not {disk_format!r}")
    if details.get("backing-filename") or details.get("full-backing-filename"):
        raise QemuImgError("image refers to a backing file; only standalone images are accepted")
    data_file = (details.get("format-specific") or {}).get("data", {}).get("data-file")
    if data_file:
        raise QemuImgError("image refers to an external data file; refused")
    return int(details["virtual-size"])


def create_overlay(base: Path, base_format: str, target: Path) -> None:
    _run(
        "create", "-q", "-f", "qcow2", "-F", _format(base_format), "-b", os.fspath(base),
        os.fspath(target),
    )


def resize(path: Path, disk_format: str, size_bytes: int) -> None:
    _run("resize", "-q", "-f", _format(disk_format), os.fspath(path), str(size_bytes))


def create(path: Path, disk_format: str, size_bytes: int) -> None:
    _run("create", "-q", "-f", _format(disk_format), os.fspath(path), str(size_bytes))


def convert(
    source: Path, source_format: str, target: Path, target_format: str, *, force_share: bool,
    snapshot: str | None = None,
) -> None:
    """Copy `source` into a standalone `target` (its backing chain flattened).

    force_share reads an image that a running (paused) qemu holds locked; the caller is
    responsible for the guest not writing meanwhile. `snapshot` copies that qcow2 internal
    snapshot instead of the current contents: its clusters are never rewritten while it exists,
    so it reads consistently even from a file another process is writing.
    """
    args = ["convert", "-f", _format(source_format), "-O", _format(target_format)]
    if force_share:
        args.append("-U")
    if snapshot is not None:
        args += ["-l", f"snapshot.name={snapshot}"]
    _run(*args, os.fspath(source), os.fspath(target))
