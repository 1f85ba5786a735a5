"""What every volume back end promises (backend.VolumeBackend), run against the NBD back end with a
real qemu-storage-daemon and against the fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from compute_agent import qemu_img
from compute_agent.volumes.backend import (
    FromImage,
    FromSnapshot,
    FromVolume,
    GiB,
    VolumeBackend,
    VolumeBackendError,
    VolumeNotFound,
)

from .conftest import BLOCK, Guest

VOL = "3f1c2a7e-0d7e-4d4b-9a51-6c1c7c1a0001"
VOL2 = "3f1c2a7e-0d7e-4d4b-9a51-6c1c7c1a0002"
VOL3 = "3f1c2a7e-0d7e-4d4b-9a51-6c1c7c1a0003"
SNAP = "8a0e7d2c-5b7f-4c41-8f0a-2b2d5f6b0001"


@pytest.fixture
def backend(backend_and_guest: tuple[VolumeBackend, Guest]) -> VolumeBackend:
    return backend_and_guest[0]


@pytest.fixture
def guest(backend_and_guest: tuple[VolumeBackend, Guest]) -> Guest:
    return backend_and_guest[1]


def test_a_blank_volume_has_the_size_asked_and_reads_zeros(backend: VolumeBackend,
                                                           guest: Guest) -> None:
    assert backend.create(VOL, 1) == GiB
    assert backend.volumes() == {VOL: GiB}
    assert guest.read(VOL, 0) == 0


def test_create_again_is_success_and_keeps_the_data(backend: VolumeBackend, guest: Guest) -> None:
    backend.create(VOL, 1)
    guest.write(VOL, 0, 0x42)
    assert backend.create(VOL, 1) == GiB
    assert guest.read(VOL, 0) == 0x42


def test_create_again_bigger_than_it_is_is_refused(backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    with pytest.raises(VolumeBackendError, match="already exists"):
        backend.create(VOL, 2)


def test_ids_that_could_name_another_file_are_refused(backend: VolumeBackend) -> None:
    with pytest.raises(VolumeBackendError, match="not valid"):
        backend.create("../etc/passwd", 1)


def test_a_clone_from_a_snapshot_holds_the_data_of_the_moment_of_the_snapshot(
        backend: VolumeBackend, guest: Guest) -> None:
    backend.create(VOL, 1)
    guest.write(VOL, 0, 0x11)
    backend.snapshot(VOL, SNAP)
    guest.write(VOL, 0, 0x22)
    guest.write(VOL, BLOCK, 0x33)

    assert backend.create(VOL2, 1, FromSnapshot(VOL, SNAP)) == GiB
    assert (guest.read(VOL2, 0), guest.read(VOL2, BLOCK)) == (0x11, 0)
    assert (guest.read(VOL, 0), guest.read(VOL, BLOCK)) == (0x22, 0x33)
    assert backend.snapshots(VOL) == [SNAP]


def test_a_clone_of_a_volume_is_a_copy_that_goes_its_own_way(backend: VolumeBackend,
                                                             guest: Guest) -> None:
    backend.create(VOL, 1)
    guest.write(VOL, 0, 0x42)
    backend.create(VOL2, 1, FromVolume(VOL))
    guest.write(VOL, 0, 0x43)
    guest.write(VOL2, BLOCK, 0x44)

    assert (guest.read(VOL2, 0), guest.read(VOL2, BLOCK)) == (0x42, 0x44)
    assert (guest.read(VOL, 0), guest.read(VOL, BLOCK)) == (0x43, 0)
    assert backend.snapshots(VOL) == []  # the temporary snapshot of the copy is gone


def test_a_clone_is_at_least_as_big_as_its_source(backend: VolumeBackend) -> None:
    backend.create(VOL, 2)
    assert backend.create(VOL2, 1, FromVolume(VOL)) == 2 * GiB
    assert backend.create(VOL3, 3, FromVolume(VOL)) == 3 * GiB


def test_a_clone_of_a_missing_snapshot_or_volume_is_not_found(backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    with pytest.raises(VolumeNotFound):
        backend.create(VOL2, 1, FromSnapshot(VOL, SNAP))
    with pytest.raises(VolumeNotFound):
        backend.create(VOL2, 1, FromVolume(VOL3))
    assert set(backend.volumes()) == {VOL}


def test_snapshot_twice_and_delete_twice_are_success(backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    backend.snapshot(VOL, SNAP)
    backend.snapshot(VOL, SNAP)
    assert backend.snapshots(VOL) == [SNAP]
    backend.delete_snapshot(VOL, SNAP)
    backend.delete_snapshot(VOL, SNAP)
    backend.delete_snapshot(VOL2, SNAP)  # nor is a missing volume an error here
    assert backend.snapshots(VOL) == []


def test_extend_grows_and_keeps_the_data_but_never_shrinks(backend: VolumeBackend,
                                                           guest: Guest) -> None:
    backend.create(VOL, 1)
    guest.write(VOL, 0, 0x42)
    assert backend.extend(VOL, 2) == 2 * GiB
    assert backend.volumes()[VOL] == 2 * GiB
    guest.write(VOL, GiB + BLOCK, 0x43)  # the new space is usable
    assert (guest.read(VOL, 0), guest.read(VOL, GiB + BLOCK)) == (0x42, 0x43)
    with pytest.raises(VolumeBackendError, match="only grow"):
        backend.extend(VOL, 1)


def test_delete_removes_the_volume_and_its_snapshots_and_again_is_success(
        backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    backend.snapshot(VOL, SNAP)
    backend.delete(VOL)
    backend.delete(VOL)
    assert backend.volumes() == {}
    with pytest.raises(VolumeNotFound):
        backend.connection(VOL)
    backend.create(VOL, 1)  # the id can be used again: no snapshot came back with it
    assert backend.snapshots(VOL) == []


def test_connection_names_the_export_by_volume_id(backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    conn = backend.connection(VOL)
    assert (conn["driver_volume_type"], conn["export"]) == ("nbd", VOL)


def test_capacity_is_total_and_free_gib(backend: VolumeBackend) -> None:
    total, free = backend.capacity()
    assert 0 <= free <= total and total > 0


def test_upload_copy_is_a_standalone_qcow2_of_the_volume_size(backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    with backend.open_for_upload(VOL) as path:
        assert qemu_img.check_standalone(path, "qcow2") == GiB
    assert not path.exists()


def test_create_from_an_image_file(backend: VolumeBackend, tmp_path: Path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\x5a" * (1024 * 1024))
    assert backend.create(VOL, 1, FromImage(image, "raw")) == GiB


def test_nothing_is_served_before_start(backend: VolumeBackend) -> None:
    backend.create(VOL, 1)
    backend.stop()
    with pytest.raises(VolumeBackendError, match="not running"):
        backend.snapshot(VOL, SNAP)
    backend.start()
    backend.snapshot(VOL, SNAP)
