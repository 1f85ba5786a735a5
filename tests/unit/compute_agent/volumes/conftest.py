"""Fixtures of the volume back-end tests: a real qemu-storage-daemon serving NBD on 127.0.0.1 in a
temporary directory, the in-memory fake, and a stand-in guest for each (what a guest would write
to and read from its disk)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from compute_agent.volumes.backend import VolumeBackend
from compute_agent.volumes.fake import FakeVolumes
from compute_agent.volumes.nbd import NbdBackend

HAVE_QSD = bool(shutil.which("qemu-storage-daemon") and shutil.which("qemu-io"))
# scripts/setup.sh installs both; CI (KUMO_NO_SKIPS) fails rather than skip.
NO_QSD = "qemu-storage-daemon and qemu-io (Debian: qemu-system-common, qemu-utils) not installed"
needs_qsd = pytest.mark.skipif(not HAVE_QSD, reason=NO_QSD)

BLOCK = 64 * 1024  # what one guest write covers


class Guest(Protocol):
    """A guest with the volume attached: writes a byte pattern over one 64 KiB block, reads the
    first byte of a block back."""

    def write(self, volume_id: str, offset: int, value: int) -> None: ...

    def read(self, volume_id: str, offset: int) -> int: ...


class NbdGuest:
    """Talks NBD to the daemon, as qemu in a guest's process would."""

    def __init__(self, backend: NbdBackend) -> None:
        self.backend = backend

    def url(self, volume_id: str) -> str:
        conn = self.backend.connection(volume_id)
        return f"nbd://{conn['host']}:{conn['port']}/{conn['export']}"

    def write(self, volume_id: str, offset: int, value: int) -> None:
        qemu_io(self.url(volume_id), f"write -P {value:#x} {offset} {BLOCK}")

    def read(self, volume_id: str, offset: int) -> int:
        out = qemu_io(self.url(volume_id), f"read -v {offset} 1", read_only=True)
        match = re.search(r"^[0-9a-f]{8}:\s+([0-9a-f]{2})", out, re.MULTILINE)
        assert match, out
        return int(match.group(1), 16)


def qemu_io(url: str, *commands: str, read_only: bool = False) -> str:
    """Run qemu-io commands, in order, on one NBD connection."""
    argv = ["qemu-io", "-f", "raw", *(["-r"] if read_only else []), url]
    argv += [arg for command in commands for arg in ("-c", command)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    # qemu-io exits 0 even when a command failed: its message is the tell
    if result.returncode != 0 or "failed" in result.stdout + result.stderr:
        raise OSError(f"{commands[0]}… on {url}: {result.stdout}{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # The monitor socket's path must fit a unix socket address: pytest's tmp_path may not.
    path = Path(tempfile.mkdtemp(prefix="kumo-qsd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def nbd(tmp_path: Path, run_dir: Path) -> Iterator[NbdBackend]:
    if not HAVE_QSD:
        pytest.skip(NO_QSD)
    backend = NbdBackend(tmp_path / "volumes", export_host="127.0.0.1", port=free_port(),
                         run_dir=run_dir)
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture
def fake() -> FakeVolumes:
    backend = FakeVolumes()
    backend.start()
    return backend


@pytest.fixture(params=["nbd", "fake"])
def backend_and_guest(request: pytest.FixtureRequest) -> tuple[VolumeBackend, Guest]:
    """Each back end in turn, with its guest: the contract they share."""
    if request.param == "fake":
        fake = request.getfixturevalue("fake")
        return fake, fake
    nbd = request.getfixturevalue("nbd")
    return nbd, NbdGuest(nbd)
