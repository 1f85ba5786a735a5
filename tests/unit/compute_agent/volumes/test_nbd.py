"""What only the NBD back end can show: the real qemu-storage-daemon, its restarts, its exports and
its files."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from compute_agent import qemu_img
from compute_agent.volumes.backend import (
    FromImage,
    FromSnapshot,
    GiB,
    VolumeBackendError,
    VolumeBusy,
)
from compute_agent.volumes.nbd import NbdBackend, node_names

from .conftest import BLOCK, NbdGuest, qemu_io

VOL = "5d0f3a57-61d4-4f3e-b2a5-0a0a0a0a0001"
VOL2 = "5d0f3a57-61d4-4f3e-b2a5-0a0a0a0a0002"
SNAP = "c3a1b2f0-1111-4e5e-9d9d-0a0a0a0a0001"


def copy_of(backend: NbdBackend) -> NbdBackend:
    """The same host's back end as a restarted agent makes it."""
    return NbdBackend(backend.dir, export_host=backend.export_host, port=backend.port,
                      run_dir=backend.run_dir)


def test_data_survives_a_daemon_restart(nbd: NbdBackend) -> None:
    guest = NbdGuest(nbd)
    nbd.create(VOL, 1)
    guest.write(VOL, BLOCK, 0x42)
    nbd.stop()
    assert nbd.qmp.answers() is False
    nbd.start()
    assert guest.read(VOL, BLOCK) == 0x42


def test_a_restarted_agent_keeps_the_running_daemon_and_its_exports(nbd: NbdBackend) -> None:
    nbd.create(VOL, 1)
    pid = nbd.pid_file.read_text()
    again = copy_of(nbd)
    again.start()
    assert nbd.pid_file.read_text() == pid
    assert again.volumes() == {VOL: GiB}
    NbdGuest(again).write(VOL, 0, 0x42)


def test_a_dead_daemon_is_started_again_with_every_volume_exported(nbd: NbdBackend) -> None:
    guest = NbdGuest(nbd)
    nbd.create(VOL, 1)
    nbd.create(VOL2, 1)
    guest.write(VOL2, 0, 0x42)
    os.kill(int(nbd.pid_file.read_text()), signal.SIGKILL)
    with pytest.raises(VolumeBackendError, match="not running"):
        nbd.snapshot(VOL, SNAP)
    assert nbd.ensure_running() is True
    assert nbd.ensure_running() is False
    assert guest.read(VOL2, 0) == 0x42
    nbd.snapshot(VOL, SNAP)


def test_delete_removes_the_file_and_the_export(nbd: NbdBackend) -> None:
    guest = NbdGuest(nbd)
    nbd.create(VOL, 1)
    url = guest.url(VOL)
    nbd.delete(VOL)
    assert not nbd.path(VOL).exists()
    with pytest.raises(OSError, match="export"):
        qemu_io(url, "read 0 512", read_only=True)


def test_an_attached_volume_is_neither_deleted_nor_extended(nbd: NbdBackend) -> None:
    nbd.create(VOL, 1)
    client = subprocess.Popen(  # a connected client, as an attached guest's qemu is
        ["qemu-io", "-f", "raw", NbdGuest(nbd).url(VOL), "-c", "write -P 0x07 0 512",
         "-c", "sleep 10000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_client(nbd, VOL)
        with pytest.raises(VolumeBusy):
            nbd.delete(VOL)
        with pytest.raises(VolumeBusy):
            nbd.extend(VOL, 2)
        nbd.snapshot(VOL, SNAP)  # snapshots are taken live
    finally:
        client.kill()
        client.wait()
    assert nbd.path(VOL).exists()
    assert nbd.volumes() == {VOL: GiB}
    nbd.delete(VOL)


def _wait_for_client(nbd: NbdBackend, volume_id: str) -> None:
    """Until the client's first write shows: then it is connected."""
    deadline = time.monotonic() + 10
    while NbdGuest(nbd).read(volume_id, 0) != 0x07:
        assert time.monotonic() < deadline, "the client did not connect"
        time.sleep(0.05)


def test_a_copy_cut_short_by_a_crash_is_removed_at_start(nbd: NbdBackend) -> None:
    nbd.create(VOL, 1)
    partial = nbd.dir / f".part-{VOL2}.qcow2"
    qemu_img.create(partial, "qcow2", GiB)
    nbd.snapshot(VOL, SNAP)
    nbd.qmp.execute("blockdev-snapshot-internal-sync", name="kumo-tmp-left", device=node_names(VOL)[1])
    copy_of(nbd).start()
    assert not partial.exists()
    assert nbd.volumes() == {VOL: GiB}
    assert nbd.snapshots(VOL) == [SNAP]
    names = [s["name"] for s in qemu_img.info(nbd.path(VOL), "qcow2",
                                              force_share=True).get("snapshots", [])]
    assert names == [SNAP]


def test_an_image_is_copied_in_with_its_data_and_its_size(nbd: NbdBackend, tmp_path: Path) -> None:
    image = tmp_path / "image.qcow2"
    qemu_img.create(image, "qcow2", 3 * GiB // 2)
    subprocess.run(["qemu-io", "-f", "qcow2", str(image), "-c", f"write -P 0x5a {BLOCK} {BLOCK}"],
                   check=True, capture_output=True)
    assert nbd.create(VOL, 1, FromImage(image, "qcow2")) == 3 * GiB // 2
    assert NbdGuest(nbd).read(VOL, BLOCK) == 0x5a


def test_an_image_with_a_backing_file_is_refused(nbd: NbdBackend, tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    qemu_img.create(base, "qcow2", GiB)
    overlay = tmp_path / "overlay.qcow2"
    qemu_img.create_overlay(base, "qcow2", overlay)
    with pytest.raises(VolumeBackendError, match="backing file"):
        nbd.create(VOL, 1, FromImage(overlay, "qcow2"))
    assert nbd.volumes() == {}
    assert list(nbd.dir.glob(".part-*")) == []


def test_the_upload_copy_holds_the_data(nbd: NbdBackend) -> None:
    nbd.create(VOL, 1)
    NbdGuest(nbd).write(VOL, BLOCK, 0x42)
    with nbd.open_for_upload(VOL) as path:
        out = subprocess.run(["qemu-io", "-f", "qcow2", "-r", str(path),
                              "-c", f"read -P 0x42 {BLOCK} {BLOCK}"],
                             capture_output=True, text=True, check=True).stdout
        assert "Pattern verification failed" not in out
    assert nbd.snapshots(VOL) == []


def test_a_snapshot_copy_is_consistent_while_a_client_keeps_writing(nbd: NbdBackend) -> None:
    """Data written just before the snapshot (its metadata perhaps still in the daemon's cache)
    is in the copy, and what is written during the copy is not."""
    guest = NbdGuest(nbd)
    nbd.create(VOL, 1)
    offsets = [i * 1024 * 1024 for i in range(0, 96, 3)]
    qemu_io(guest.url(VOL), *[f"write -P 0x11 {o} {BLOCK}" for o in offsets])
    nbd.snapshot(VOL, SNAP)
    writer = subprocess.Popen(
        ["qemu-io", "-f", "raw", guest.url(VOL),
         *[arg for i in range(400) for arg in ("-c", f"write -P 0x99 {i % 96 * 2**20} 64k")]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while guest.read(VOL, 0) != 0x99:  # the copy starts while the writer is under way
            assert time.monotonic() < deadline, "the writer did not start"
        nbd.create(VOL2, 1, FromSnapshot(VOL, SNAP))
        assert writer.poll() is None, "the writer was done before the copy: nothing was shown"
    finally:
        writer.kill()
        writer.wait()
    # one connection for all the reads; a block that differs fails pattern verification
    qemu_io(guest.url(VOL2), *[f"read -P 0x11 {o} {BLOCK}" for o in offsets], read_only=True)
    assert guest.read(VOL, offsets[0]) == 0x99


def test_a_port_already_taken_is_a_clear_error(nbd: NbdBackend, tmp_path: Path,
                                               run_dir: Path) -> None:
    other = NbdBackend(tmp_path / "other", export_host="127.0.0.1", port=nbd.port,
                       run_dir=run_dir / "other")
    try:
        with pytest.raises(VolumeBackendError, match=f"cannot serve NBD on 127.0.0.1:{nbd.port}"):
            other.start()
        # a daemon that cannot serve is not left "running": the next check tries again
        with pytest.raises(VolumeBackendError, match="cannot serve NBD"):
            other.ensure_running()
    finally:
        other.stop()
