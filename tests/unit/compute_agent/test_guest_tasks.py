"""The agent's rescue, shelve, backup, crash dump and NIC tasks, on libvirt's test driver (and the
rules every driver keeps, on the fake too)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent import qemu_img
from compute_agent.domain_xml import interface_macs, is_rescue
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.image_cache import ImageCache
from compute_agent.instance_disks import prepare
from compute_agent.instance_files import InstanceFiles
from compute_agent.manager import ComputeManager

from .conftest import SpawnRequestFactory, make_qcow2, needs_qemu_img
from .image_server import ImageServer

MAC_A = "fa:16:3e:00:00:0a"
MAC_B = "fa:16:3e:00:00:0b"


def _definition(driver: LibvirtDriver, instance_uuid: str) -> str:
    return driver._act("test", instance_uuid,
                       lambda d: str(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))


def _nic(mac: str, port: str = "port-a") -> msg.NetworkInfo:
    return msg.NetworkInfo(network_id="net-1", network_name="net", port_id=port, mac_address=mac)


# --- every driver


@pytest.fixture
def guest(any_driver: Driver) -> Iterator[msg.SpawnRequest]:
    spawn = msg.SpawnRequest(request_id="r", instance_uuid=str(uuid.uuid4()), name="n",
                             hostname="n", vcpus=1, memory_mb=128, root_gb=1)
    assert any_driver.spawn(spawn) == msg.POWER_RUNNING
    yield spawn
    any_driver.destroy(spawn.instance_uuid)


def test_rescue_and_unrescue_leave_the_guest_running_and_succeed_again(
    any_driver: Driver, guest: msg.SpawnRequest
) -> None:
    rescue = msg.RescueRequest(request_id="r", instance_uuid=guest.instance_uuid, spawn=guest)
    assert any_driver.rescue(rescue) == any_driver.rescue(rescue) == msg.POWER_RUNNING
    assert any_driver.unrescue(guest) == any_driver.unrescue(guest) == msg.POWER_RUNNING


def test_a_crash_dump_needs_a_running_guest(any_driver: Driver, guest: msg.SpawnRequest) -> None:
    assert any_driver.trigger_crash_dump(guest.instance_uuid) == msg.POWER_RUNNING
    any_driver.pause(guest.instance_uuid)
    assert any_driver.trigger_crash_dump(guest.instance_uuid) == msg.POWER_PAUSED
    any_driver.stop(guest.instance_uuid, 0)
    with pytest.raises(DriverError):
        any_driver.trigger_crash_dump(guest.instance_uuid)
    with pytest.raises(DriverError):
        any_driver.trigger_crash_dump(str(uuid.uuid4()))


def test_nics_are_set_to_exactly_the_list_and_a_missing_domain_is_an_error(
    any_driver: Driver, guest: msg.SpawnRequest
) -> None:
    assert any_driver.set_interfaces(guest.instance_uuid, [MAC_A, MAC_B]) == msg.POWER_RUNNING
    assert any_driver.set_interfaces(guest.instance_uuid, [MAC_B]) == msg.POWER_RUNNING
    with pytest.raises(DriverError):
        any_driver.set_interfaces(str(uuid.uuid4()), [MAC_A])


# --- libvirt's test driver: what the definition says


def test_a_rescued_definition_is_marked_and_unrescue_defines_the_guest_as_it_was(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    spawn = spawn_request()
    driver.spawn(spawn)
    driver.rescue(msg.RescueRequest(request_id="r", instance_uuid=spawn.instance_uuid))
    assert is_rescue(_definition(driver, spawn.instance_uuid))
    assert driver.power_state(spawn.instance_uuid) == msg.POWER_RUNNING
    driver.unrescue(spawn)
    assert not is_rescue(_definition(driver, spawn.instance_uuid))
    assert driver.power_state(spawn.instance_uuid) == msg.POWER_RUNNING


def test_a_stable_device_rescue_is_refused_with_a_reason(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    spawn = spawn_request()
    driver.spawn(spawn)
    with pytest.raises(DriverError, match="stable device rescue"):
        driver.rescue(msg.RescueRequest(request_id="r", instance_uuid=spawn.instance_uuid,
                                        device="cdrom", bus="ide"))
    assert not is_rescue(_definition(driver, spawn.instance_uuid))


def test_nics_land_in_the_definition_when_the_hypervisor_cannot_hot_plug(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory
) -> None:
    spawn = spawn_request()
    driver.spawn(spawn)
    driver.set_interfaces(spawn.instance_uuid, [MAC_A, MAC_B.upper()])
    assert interface_macs(_definition(driver, spawn.instance_uuid)) == [MAC_A, MAC_B]
    driver.set_interfaces(spawn.instance_uuid, [MAC_B])
    assert interface_macs(_definition(driver, spawn.instance_uuid)) == [MAC_B]


# --- the manager's tasks and the events they report


def _upload(image_server: ImageServer, image_id: str, running: str, **fields: object
            ) -> msg.SnapshotRequest:
    return msg.SnapshotRequest(
        request_id="r", instance_uuid=running, image_id=image_id,
        upload_url=image_server.url(f"v2/images/{image_id}/file"), **fields)  # type: ignore[arg-type]


@needs_qemu_img
def test_a_shelve_uploads_the_disk_of_a_stopped_guest_and_keeps_it_here(
    manager: ComputeManager, running: str, image_server: ImageServer
) -> None:
    event = manager.shelve(_upload(image_server, "img-shelved", running))
    assert (event.event, event.image_id) == (msg.EVENT_SHELVED, "img-shelved")
    assert event.power_state == msg.POWER_SHUTDOWN
    assert image_server.uploads["/v2/images/img-shelved/file"][:4] == b"QFI\xfb"
    unshelved = manager.unshelve(msg.PowerRequest(request_id="r", instance_uuid=running))
    assert (unshelved.event, unshelved.power_state) == (msg.EVENT_UNSHELVED, msg.POWER_RUNNING)


@needs_qemu_img
def test_a_shelve_with_offload_leaves_nothing_here_and_the_guest_may_come_back(
    manager: ComputeManager, running: str, image_server: ImageServer,
    spawn_request: SpawnRequestFactory,
) -> None:
    event = manager.shelve(_upload(image_server, "img-off", running, offload=True))
    assert (event.event, event.power_state) == (msg.EVENT_SHELVE_OFFLOADED, msg.POWER_NOSTATE)
    assert manager.driver.power_state(running) == msg.POWER_NOSTATE
    # No tombstone: an unshelve may bring it back to this very host.
    back = manager.spawn(spawn_request(instance_uuid=running))
    assert back.event == msg.EVENT_SPAWNED


def test_a_failed_upload_is_a_failed_shelve_and_the_guest_stays(
    manager: ComputeManager, running: str
) -> None:
    event = manager.shelve(msg.SnapshotRequest(
        request_id="r", instance_uuid=running, image_id="i", upload_url="http://127.0.0.1:9/x",
        offload=True))
    assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_SHELVE)
    assert manager.driver.power_state(running) != msg.POWER_NOSTATE


def test_shelve_offload_removes_the_domain_and_succeeds_again(
    manager: ComputeManager, running: str
) -> None:
    request = msg.PowerRequest(request_id="r", instance_uuid=running)
    assert manager.shelve_offload(request).event == msg.EVENT_SHELVE_OFFLOADED
    assert manager.shelve_offload(request).event == msg.EVENT_SHELVE_OFFLOADED
    assert manager.driver.power_state(running) == msg.POWER_NOSTATE


@needs_qemu_img
def test_a_backup_is_uploaded_and_names_its_image(
    manager: ComputeManager, running: str, image_server: ImageServer
) -> None:
    event = manager.backup(_upload(image_server, "img-backup", running))
    assert (event.event, event.image_id) == (msg.EVENT_BACKUP_UPLOADED, "img-backup")
    assert event.power_state == msg.POWER_RUNNING


def test_a_crash_dump_of_a_stopped_guest_is_reported_failed(
    manager: ComputeManager, running: str
) -> None:
    request = msg.PowerRequest(request_id="r", instance_uuid=running)
    assert manager.trigger_crash_dump(request).event == msg.EVENT_CRASH_DUMP_TRIGGERED
    manager.stop(request)
    failed = manager.trigger_crash_dump(request)
    assert (failed.event, failed.action) == (msg.EVENT_ACTION_FAILED,
                                             msg.ACTION_TRIGGER_CRASH_DUMP)
    assert "not running" in failed.message


def test_attach_and_detach_report_the_port_and_leave_the_listed_nics(
    manager: ComputeManager, driver: LibvirtDriver, running: str
) -> None:
    attached = manager.attach_interface(msg.InterfaceRequest(
        request_id="r", instance_uuid=running, port_id="port-b",
        networks=[_nic(MAC_A), _nic(MAC_B, "port-b")]))
    assert (attached.event, attached.port_id) == (msg.EVENT_INTERFACE_ATTACHED, "port-b")
    detached = manager.detach_interface(msg.InterfaceRequest(
        request_id="r", instance_uuid=running, port_id="port-b", networks=[_nic(MAC_A)]))
    assert (detached.event, detached.port_id) == (msg.EVENT_INTERFACE_DETACHED, "port-b")
    assert interface_macs(_definition(driver, running)) == [MAC_A]


def test_rescue_and_unrescue_report_their_events(
    manager: ComputeManager, driver: LibvirtDriver, running: str,
    spawn_request: SpawnRequestFactory,
) -> None:
    rescued = manager.rescue(msg.RescueRequest(request_id="r", instance_uuid=running))
    assert (rescued.event, rescued.power_state) == (msg.EVENT_RESCUED, msg.POWER_RUNNING)
    unrescued = manager.unrescue(spawn_request(instance_uuid=running))
    assert unrescued.event == msg.EVENT_UNRESCUED
    assert not is_rescue(_definition(driver, running))


def test_a_failed_plug_names_its_port(manager: ComputeManager) -> None:
    failed = manager.attach_interface(msg.InterfaceRequest(
        request_id="r", instance_uuid=str(uuid.uuid4()), port_id="port-b",
        networks=[_nic(MAC_B, "port-b")]))
    assert (failed.event, failed.action, failed.port_id) == (
        msg.EVENT_ACTION_FAILED, msg.ACTION_ATTACH_INTERFACE, "port-b")


# --- what a real guest gets (qemu-img and the image cache, no hypervisor)


def _image(tmp_path: Path, image_server: ImageServer, name: str) -> msg.ImageRef:
    data = make_qcow2(tmp_path / name, "64M")
    checksum = image_server.add(name, data)
    return msg.ImageRef(id=name.split(".")[0], checksum=checksum, size=len(data),
                        url=image_server.url(name), token="t")


@needs_qemu_img
def test_a_real_rescue_boots_a_standalone_rescue_disk_with_the_guests_own_disk_second(
    tmp_path: Path, image_server: ImageServer
) -> None:
    driver = LibvirtDriver("test:///default", domain_type="qemu",
                           instances_dir=tmp_path / "instances")
    spawn = msg.SpawnRequest(
        request_id="r", instance_uuid=str(uuid.uuid4()), name="n", hostname="n", vcpus=1,
        memory_mb=128, root_gb=1, image=_image(tmp_path, image_server, "own.qcow2"),
        networks=[_nic(MAC_A)])
    own_disk = driver.files.disk(spawn.instance_uuid)
    xml = driver._rescue_xml(spawn, _image(tmp_path, image_server, "rescue.qcow2"))
    root = ET.fromstring(xml)
    disks = {d.find("target").get("dev"): d.find("source").get("file")
             for d in root.findall("devices/disk")}
    rescue_disk = driver.files.path(spawn.instance_uuid, "disk.rescue")
    assert (disks["vda"], disks["vdb"]) == (str(rescue_disk), str(own_disk))
    assert "backing-filename" not in qemu_img.info(rescue_disk, "qcow2")
    assert is_rescue(xml) and interface_macs(xml) == [MAC_A]
    driver.close()


@needs_qemu_img
def test_an_unshelved_guests_disk_is_built_on_its_shelve_image(
    tmp_path: Path, image_server: ImageServer
) -> None:
    files = InstanceFiles(tmp_path / "instances")
    cache = ImageCache(files.base_dir)
    spawn = msg.SpawnRequest(
        request_id="r", instance_uuid=str(uuid.uuid4()), name="n", hostname="n", vcpus=1,
        memory_mb=128, root_gb=1, image=_image(tmp_path, image_server, "own.qcow2"),
        restore_from=_image(tmp_path, image_server, "shelved.qcow2"))
    prepare(spawn, files, cache)
    backing = qemu_img.info(files.disk(spawn.instance_uuid), "qcow2")["backing-filename"]
    assert backing == str(cache.fetch(spawn.restore_from).path)  # type: ignore[arg-type]
