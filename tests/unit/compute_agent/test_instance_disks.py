"""What a real (non-test-driver) guest boots from, made for real with qemu-img and a local image
server: an overlay on the cached image, grown to the flavor's root disk, and a config drive; and
the domain XML that puts them, the console log and a NIC together."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from compute_agent import messages as msg
from compute_agent.domain_xml import build_domain_xml
from compute_agent.drivers.base import DriverError
from compute_agent.image_cache import ImageCache
from compute_agent.instance_disks import check_received_disk, prepare, prepare_for_migration
from compute_agent.instance_files import InstanceFiles

from .conftest import make_qcow2, needs_qemu_img
from .image_server import ImageServer

pytestmark = needs_qemu_img

UUID = "6f1d3c0e-2b7a-4c1e-9a8f-0d5b1e2c3a4f"


@pytest.fixture
def files(tmp_path: Path) -> InstanceFiles:
    return InstanceFiles(tmp_path / "instances")


@pytest.fixture
def cache(files: InstanceFiles) -> ImageCache:
    return ImageCache(files.base_dir)


@pytest.fixture
def spawn(tmp_path: Path, image_server: ImageServer) -> msg.SpawnRequest:
    data = make_qcow2(tmp_path / "image.qcow2", "64M")
    checksum = image_server.add("image.qcow2", data)
    return msg.SpawnRequest(
        request_id="req-1", instance_uuid=UUID, name="web", hostname="web-1", vcpus=1,
        memory_mb=128, root_gb=1,
        image=msg.ImageRef(id="img-1", checksum=checksum, size=len(data),
                           url=image_server.url("image.qcow2"), token="t"),
        networks=[msg.NetworkInfo("net", "private", "port", "fa:16:3e:00:00:01", "10.0.0.5")],
    )


def image_info(path: str) -> dict:
    out = subprocess.run(
        ["qemu-img", "info", "-f", "qcow2", "--output=json", path],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout
    return json.loads(out)


def test_the_root_disk_is_an_overlay_on_the_cached_image_grown_to_the_flavor(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    prepared = prepare(spawn, files, cache)
    root = prepared.disks[0]
    assert root.path == str(files.disk(UUID))
    info = image_info(root.path)
    assert info["virtual-size"] == 1024**3
    assert info["backing-filename-format"] == "qcow2"
    assert Path(info["backing-filename"]).parent == files.base_dir.resolve()
    assert files.bases_in_use() == {Path(info["backing-filename"]).name}


def test_a_disk_larger_than_the_flavor_is_not_shrunk(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    spawn.root_gb = 0  # smaller than the 64 MiB image
    prepared = prepare(spawn, files, cache)
    assert image_info(prepared.disks[0].path)["virtual-size"] == 64 * 1024**2


def test_two_instances_share_one_cached_image_and_have_their_own_disks(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache, image_server: ImageServer
) -> None:
    first = prepare(spawn, files, cache)
    spawn.instance_uuid = "11111111-2222-4333-8444-555555555555"
    second = prepare(spawn, files, cache)
    assert first.disks[0].path != second.disks[0].path
    assert image_server.gets("image.qcow2") == 1
    assert len([p for p in files.base_dir.iterdir() if not p.name.startswith(".")]) == 1


def test_a_resize_grows_the_existing_disk_and_a_revert_never_shrinks_it(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    disk = Path(prepare(spawn, files, cache).disks[0].path)
    before = disk.stat().st_ino
    spawn.root_gb = 2
    prepare(spawn, files, cache)
    assert image_info(str(disk))["virtual-size"] == 2 * 1024**3
    assert disk.stat().st_ino == before, "the same disk, grown"
    spawn.root_gb = 1
    prepare(spawn, files, cache)
    assert image_info(str(disk))["virtual-size"] == 2 * 1024**3


def test_a_retried_spawn_keeps_the_disk_the_guest_wrote(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    disk = Path(prepare(spawn, files, cache).disks[0].path)
    before = disk.stat().st_ino
    prepare(spawn, files, cache)
    assert disk.stat().st_ino == before


def test_a_spawn_without_an_image_is_refused_before_any_file_is_made(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    spawn.image = None
    with pytest.raises(DriverError, match="image"):
        prepare(spawn, files, cache)
    assert not (files.root / UUID).exists()


def test_the_domain_boots_from_its_disk_with_the_config_drive_console_log_and_nic(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    prepared = prepare(spawn, files, cache)
    root = ET.fromstring(
        build_domain_xml(
            spawn, domain_type="qemu", disks=prepared.disks,
            serial_log_path=prepared.serial_log_path,
            mac_addresses=[n.mac_address for n in spawn.networks], video_model="vga",
            machine="pc",
        )
    )
    assert root.get("type") == "qemu"
    assert root.find("os/type").get("machine") == "pc"
    disk, cdrom = root.findall("devices/disk")
    assert disk.find("source").get("file") == str(files.disk(UUID))
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert cdrom.get("device") == "cdrom"
    assert cdrom.find("source").get("file") == str(files.config_drive(UUID))
    assert cdrom.find("driver").get("type") == "raw"
    assert cdrom.find("readonly") is not None
    assert Path(cdrom.find("source").get("file")).is_file()
    log = root.find("devices/serial/log")
    assert log.get("file") == str(files.console_log(UUID))
    interface = root.find("devices/interface")
    assert interface.get("type") == "user"
    assert interface.find("mac").get("address") == "fa:16:3e:00:00:01"
    assert root.find("devices/video/model").get("type") == "vga"
    assert root.find("devices/graphics").get("type") == "vnc"
    assert root.find("cpu") is None, "never host-passthrough"


# --- a migration's destination ------------------------------------------------------------


def test_a_live_destination_gets_an_empty_overlay_on_its_own_cached_image(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    prepare_for_migration(spawn, files, cache, with_disk=True)
    info = image_info(str(files.disk(UUID)))
    assert info["virtual-size"] == 1024**3  # as the source's: the copy needs equal sizes
    assert Path(info["backing-filename"]).parent == files.base_dir.resolve()
    assert files.config_drive(UUID).is_file() and files.console_log(UUID).is_file()
    assert files.bases_in_use() == {Path(info["backing-filename"]).name}


def test_a_live_destination_never_keeps_what_an_earlier_attempt_copied(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    prepare_for_migration(spawn, files, cache, with_disk=True)
    fresh = files.disk(UUID).read_bytes()
    with open(files.disk(UUID), "ab") as disk:
        disk.write(b"copied by a failed attempt" * 1000)
    prepare_for_migration(spawn, files, cache, with_disk=True)
    assert files.disk(UUID).read_bytes() == fresh


def test_without_an_image_the_copy_lands_on_a_flat_disk_of_the_root_size(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    spawn.image, spawn.root_gb = None, 2
    prepare_for_migration(spawn, files, cache, with_disk=True)
    info = image_info(str(files.disk(UUID)))
    assert info["virtual-size"] == 2 * 1024**3 and "backing-filename" not in info


def test_a_cold_destination_caches_the_image_and_waits_for_the_disk(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    prepare_for_migration(spawn, files, cache, with_disk=False)
    assert not files.disk(UUID).exists()
    assert len(files.bases_in_use()) == 1, "the sweep must keep the image the disk needs"
    assert files.config_drive(UUID).is_file()


def test_a_received_overlay_on_a_cached_image_is_accepted(
    spawn: msg.SpawnRequest, files: InstanceFiles, cache: ImageCache
) -> None:
    prepare(spawn, files, cache)
    check_received_disk(files.disk(UUID), cache)


def test_a_received_disk_built_on_a_file_outside_the_cache_is_refused(
    files: InstanceFiles, cache: ImageCache, tmp_path: Path
) -> None:
    make_qcow2(tmp_path / "elsewhere.qcow2")
    received = tmp_path / "received.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(tmp_path / "elsewhere.qcow2"), str(received)], check=True, timeout=30)
    with pytest.raises(DriverError, match="outside"):
        check_received_disk(received, cache)


def test_a_received_disk_that_is_not_qcow2_is_refused(
    cache: ImageCache, tmp_path: Path
) -> None:
    received = tmp_path / "received.raw"
    received.write_bytes(bytes(1024 * 1024))
    with pytest.raises(DriverError):
        check_received_disk(received, cache)
