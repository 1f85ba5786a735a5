"""Volumes as a guest's disks: the nbd disk in the domain XML, attach and detach through the
manager on libvirt's test driver (and the fake), a boot volume instead of a local root disk."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import (
    build_domain_xml,
    local_disk_targets,
    volume_disk_xml,
    volume_disks,
)
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.image_cache import ImageCache
from compute_agent.instance_disks import prepare
from compute_agent.instance_files import InstanceFiles
from compute_agent.manager import ComputeManager

from .conftest import SpawnRequestFactory
from .fakes import RecordingReporter

VOLUME = "5b8e2c1a-4a8e-4f51-9a43-1d2b7c3e9f00"
CONNECTION = {"driver_volume_type": "nbd", "host": "10.77.0.50", "port": 10809,
              "export": VOLUME}


def _device(volume_id: str = VOLUME, device: str = "vdb", boot_index: int = -1,
            **connection: object) -> msg.BlockDevice:
    return msg.BlockDevice(volume_id=volume_id, device=device, boot_index=boot_index,
                           connection={**CONNECTION, "export": volume_id, **connection})


def _definition(driver: LibvirtDriver, instance_uuid: str) -> str:
    return driver._act("test", instance_uuid,
                       lambda d: str(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))


# --- the domain XML


def test_a_volume_is_a_raw_nbd_disk_qemu_opens_itself_with_the_volume_id_as_serial() -> None:
    disk = ET.fromstring(volume_disk_xml(_device()))
    assert (disk.get("type"), disk.get("device")) == ("network", "disk")
    driver = disk.find("driver")
    assert driver is not None and (driver.get("type"), driver.get("cache")) == ("raw", "none")
    source = disk.find("source")
    assert source is not None
    assert (source.get("protocol"), source.get("name")) == ("nbd", VOLUME)
    host = source.find("host")
    assert host is not None and (host.get("name"), host.get("port")) == ("10.77.0.50", "10809")
    target = disk.find("target")
    assert target is not None and (target.get("dev"), target.get("bus")) == ("vdb", "virtio")
    assert disk.findtext("serial") == VOLUME
    assert disk.find("boot") is None


@pytest.mark.parametrize("connection", [
    {"driver_volume_type": "iscsi"},
    {"port": 0},
    {"port": "10809; rm -rf /"},
    {"host": "a host<with>markup"},
    {"export": ""},
])
def test_a_connection_the_host_cannot_use_is_refused(connection: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        volume_disk_xml(_device(**connection))


def test_a_boot_volume_is_vda_booted_first_and_there_is_no_local_disk() -> None:
    spawn = msg.SpawnRequest(request_id="r", instance_uuid=str(uuid.uuid4()), name="n",
                             hostname="n", vcpus=1, memory_mb=128, root_gb=0,
                             block_devices=[_device(device="vda", boot_index=0),
                                            _device(str(uuid.uuid4()), "vdb")])
    root = ET.fromstring(build_domain_xml(spawn, domain_type="qemu",
                                          block_devices=spawn.block_devices))
    assert root.find("os/boot") is None  # per-device order instead: libvirt takes one or other
    disks = root.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]  # type: ignore[union-attr]
    assert disks[0].find("boot").get("order") == "1"  # type: ignore[union-attr]
    assert local_disk_targets(ET.tostring(root, encoding="unicode")) == []


def test_prepare_makes_no_root_disk_for_a_guest_that_boots_from_a_volume(tmp_path: Path) -> None:
    files = InstanceFiles(tmp_path / "instances")
    cache = ImageCache(tmp_path / "cache")
    spawn = msg.SpawnRequest(request_id="r", instance_uuid=str(uuid.uuid4()), name="n",
                             hostname="n", vcpus=1, memory_mb=128, root_gb=0,
                             block_devices=[_device(device="vda", boot_index=0)])
    prepared = prepare(spawn, files, cache)
    assert [d.target_dev for d in prepared.disks] == ["hdc"]  # the config drive alone
    assert not files.disk(spawn.instance_uuid).exists()


# --- attach and detach


def test_attach_and_detach_through_the_manager_change_the_definition_and_name_the_volume(
    manager: ComputeManager, driver: LibvirtDriver, reporter: RecordingReporter, running: str
) -> None:
    attach = msg.VolumeAttachRequest(request_id="req-a", instance_uuid=running, device=_device())
    event = manager.attach_volume(attach)
    assert (event.event, event.volume_id) == (msg.EVENT_VOLUME_ATTACHED, VOLUME)
    assert VOLUME in volume_disks(_definition(driver, running))
    assert manager.attach_volume(attach).event == msg.EVENT_VOLUME_ATTACHED  # repeated: done

    event = manager.detach_volume(attach)
    assert (event.event, event.volume_id) == (msg.EVENT_VOLUME_DETACHED, VOLUME)
    assert VOLUME not in volume_disks(_definition(driver, running))
    assert manager.detach_volume(attach).event == msg.EVENT_VOLUME_DETACHED  # gone already
    assert [e.volume_id for e in reporter.events[-4:]] == [VOLUME] * 4


def test_an_attach_that_cannot_happen_fails_naming_the_volume_and_leaves_the_guest(
    manager: ComputeManager, driver: LibvirtDriver, running: str
) -> None:
    taken = msg.VolumeAttachRequest(request_id="r", instance_uuid=running, device=_device())
    manager.attach_volume(taken)
    other = str(uuid.uuid4())
    clash = msg.VolumeAttachRequest(request_id="r", instance_uuid=running,
                                    device=_device(other, "vdb"))
    event = manager.attach_volume(clash)
    assert (event.event, event.action, event.volume_id) == (
        msg.EVENT_ACTION_FAILED, msg.ACTION_ATTACH_VOLUME, other)
    bad = msg.VolumeAttachRequest(request_id="r", instance_uuid=running,
                                  device=_device(other, "vdc", driver_volume_type="rbd"))
    assert manager.attach_volume(bad).event == msg.EVENT_ACTION_FAILED
    assert list(volume_disks(_definition(driver, running))) == [VOLUME]


def test_a_spawn_with_block_devices_defines_them(
    manager: ComputeManager, driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request(image=None, root_gb=0,
                            block_devices=[_device(device="vda", boot_index=0)])
    assert manager.spawn(request).event == msg.EVENT_SPAWNED
    assert list(volume_disks(_definition(driver, request.instance_uuid))) == [VOLUME]


def test_every_driver_attaches_once_and_detaches_what_it_has(any_driver: Driver) -> None:
    spawn = msg.SpawnRequest(request_id="r", instance_uuid=str(uuid.uuid4()), name="n",
                             hostname="n", vcpus=1, memory_mb=128, root_gb=1)
    any_driver.spawn(spawn)
    try:
        assert any_driver.attach_volume(spawn.instance_uuid, _device()) == msg.POWER_RUNNING
        assert any_driver.attach_volume(spawn.instance_uuid, _device()) == msg.POWER_RUNNING
        with pytest.raises(DriverError):
            any_driver.attach_volume(spawn.instance_uuid, _device(str(uuid.uuid4())))
        assert any_driver.detach_volume(spawn.instance_uuid, VOLUME) == msg.POWER_RUNNING
        assert any_driver.detach_volume(spawn.instance_uuid, VOLUME) == msg.POWER_RUNNING
        with pytest.raises(DriverError):
            any_driver.attach_volume(str(uuid.uuid4()), _device())
    finally:
        any_driver.destroy(spawn.instance_uuid)


def test_a_live_migration_copies_the_local_root_disk_only_never_a_volume_or_the_cdrom() -> None:
    from compute_agent.domain_xml import DiskSpec

    spawn = msg.SpawnRequest(request_id="r", instance_uuid=str(uuid.uuid4()), name="n",
                             hostname="n", vcpus=1, memory_mb=128, root_gb=1)
    xml = build_domain_xml(spawn, domain_type="qemu", block_devices=[_device()], disks=[
        DiskSpec(path="/var/lib/kumo/instances/x/disk", target_dev="vda"),
        DiskSpec(path="/var/lib/kumo/instances/x/disk.config", target_dev="hdc", bus="ide",
                 driver_type="raw", device="cdrom", read_only=True)])
    assert local_disk_targets(xml) == ["vda"]


def test_a_volume_backed_shelve_uploads_nothing_and_offloads(
    manager: ComputeManager, driver: LibvirtDriver, running: str
) -> None:
    # No upload URL: the root disk is a volume. A URL nothing listens on would fail the shelve.
    event = manager.shelve(msg.SnapshotRequest(request_id="r", instance_uuid=running,
                                               image_id="", upload_url="", offload=True))
    assert (event.event, event.power_state) == (msg.EVENT_SHELVE_OFFLOADED, msg.POWER_NOSTATE)
    assert driver.power_state(running) == msg.POWER_NOSTATE
