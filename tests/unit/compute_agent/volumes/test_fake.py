"""The fake's own promises: failures on demand that change nothing, and the refusals a real volume
host makes (attached volumes, a full disk) that tests of the code above it need."""

from __future__ import annotations

import pytest

from compute_agent.volumes.backend import (
    FromVolume,
    VolumeBackendError,
    VolumeBusy,
    VolumeNotFound,
    parse_source,
)
from compute_agent.volumes.fake import FakeVolumes

VOL = "vol-1"
VOL2 = "vol-2"


def test_an_injected_failure_raises_once_and_changes_nothing(fake: FakeVolumes) -> None:
    fake.fail("create")
    with pytest.raises(VolumeBackendError, match="injected failure of create"):
        fake.create(VOL, 1)
    assert fake.volumes() == {}
    fake.create(VOL, 1)
    assert fake.volumes() == {VOL: 1024**3}


def test_a_failure_can_be_any_error_and_repeat(fake: FakeVolumes) -> None:
    fake.create(VOL, 1)
    fake.fail("snapshot", VolumeNotFound("gone"), times=2)
    for _ in range(2):
        with pytest.raises(VolumeNotFound, match="gone"):
            fake.snapshot(VOL, "s1")
    fake.snapshot(VOL, "s1")
    assert fake.snapshots(VOL) == ["s1"]
    assert fake.calls.count("snapshot") == 3


def test_only_interface_methods_can_fail(fake: FakeVolumes) -> None:
    with pytest.raises(ValueError, match="not a VolumeBackend method"):
        fake.fail("creat")


def test_a_connected_volume_is_neither_deleted_nor_extended(fake: FakeVolumes) -> None:
    fake.create(VOL, 1)
    fake.connect(VOL)
    with pytest.raises(VolumeBusy):
        fake.delete(VOL)
    with pytest.raises(VolumeBusy):
        fake.extend(VOL, 2)
    fake.disconnect(VOL)
    fake.extend(VOL, 2)
    fake.delete(VOL)
    assert fake.volumes() == {}


def test_a_full_host_refuses_a_volume(fake: FakeVolumes) -> None:
    small = FakeVolumes(total_gb=3)
    small.start()
    small.create(VOL, 2)
    with pytest.raises(VolumeBackendError, match="not enough space"):
        small.create(VOL2, 1, FromVolume(VOL))
    assert small.capacity() == (3, 1)


def test_sources_parse_from_the_plain_tuples_messages_carry() -> None:
    assert parse_source(None) is None
    assert parse_source(("volume", VOL)) == FromVolume(VOL)
    with pytest.raises(VolumeBackendError, match="unknown volume source"):
        parse_source(("snapshot", VOL))
