"""The files a real guest boots from: its root disk (an overlay on the cached image) and its config
drive, made before the domain is defined; and what a migration's destination makes before the
guest arrives. libvirt's test driver has no disks and never comes here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from compute_agent import config_drive, qemu_img
from compute_agent.domain_xml import DiskSpec, canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.image_cache import ImageCache
from compute_agent.instance_files import InstanceFiles, contained
from compute_agent.messages import SpawnRequest

GIB = 1024**3
ROOT_DEVICE = "vda"  # the root disk's target device: the one disk a live migration copies


@dataclass(frozen=True)
class PreparedInstance:
    disks: list[DiskSpec]
    serial_log_path: str


def boots_from_volume(request: SpawnRequest) -> bool:
    """Whether the guest's root disk is a volume (then it has no local root disk here)."""
    return any(device.boot_index == 0 for device in request.block_devices)


def prepare(request: SpawnRequest, files: InstanceFiles, cache: ImageCache) -> PreparedInstance:
    """Make the instance's directory, root disk and config drive; return what the domain needs.

    An existing root disk is kept (a retried spawn, a resize or a migration's disk must not be
    wiped), only grown to the flavor if it is smaller. A new one is made under a temporary name
    and renamed, so a disk at its real name is always a whole one.
    """
    instance_uuid = canonical_uuid(request.instance_uuid)
    from_volume = boots_from_volume(request)
    if request.image is None and not from_volume:
        raise DriverError("a real guest needs an image or a volume to boot from")
    directory = files.make_instance_dir(instance_uuid)
    disk = files.disk(instance_uuid)
    drive = files.config_drive(instance_uuid)
    config_drive.build(drive, request)
    cdrom = DiskSpec(path=os.fspath(drive), target_dev="hdc", bus="ide", driver_type="raw",
                     device="cdrom", read_only=True)
    serial_log_path = os.fspath(files.console_log(instance_uuid))
    if from_volume:
        # The volume is vda (domain_xml.volume_disk): nothing of the guest's disk is here.
        return PreparedInstance(disks=[cdrom], serial_log_path=serial_log_path)
    if not disk.exists():
        _new_root_disk(request, files, cache, directory)
    else:
        # A resize to a larger flavor grows the disk the guest already has; nothing shrinks one.
        wanted = request.root_gb * GIB
        if wanted > int(qemu_img.info(disk, "qcow2")["virtual-size"]):
            qemu_img.resize(disk, "qcow2", wanted)
    return PreparedInstance(
        disks=[
            DiskSpec(path=os.fspath(disk), target_dev=ROOT_DEVICE, bus="virtio",
                     driver_type="qcow2"),
            cdrom,
        ],
        serial_log_path=serial_log_path,
    )


def prepare_for_migration(
    request: SpawnRequest, files: InstanceFiles, cache: ImageCache, *, with_disk: bool
) -> None:
    """The destination's files before a guest arrives: its directory, config drive, empty console
    log and its image in the cache (the disk that travels is an overlay on it). `with_disk`
    (live): also the disk the copy lands in, made anew, since a copy only writes what the source
    holds and must not land on what an earlier attempt left."""
    instance_uuid = canonical_uuid(request.instance_uuid)
    directory = files.make_instance_dir(instance_uuid)
    if request.image is not None:
        cached = cache.fetch(request.image)
        files.record_base(instance_uuid, contained(cached.path, cache.directory))
    if with_disk and not boots_from_volume(request):
        files.disk(instance_uuid).unlink(missing_ok=True)
        _new_root_disk(request, files, cache, directory)
    config_drive.build(files.config_drive(instance_uuid), request)
    files.console_log(instance_uuid).touch(mode=0o644)


def _new_root_disk(
    request: SpawnRequest, files: InstanceFiles, cache: ImageCache, directory: Path
) -> None:
    """A qcow2 overlay on the cached image grown to the flavor's root size or, without an image,
    an empty qcow2 of that size; written aside, then renamed into place."""
    instance_uuid = canonical_uuid(request.instance_uuid)
    partial = contained(directory / ".disk.partial", directory)
    partial.unlink(missing_ok=True)
    wanted = request.root_gb * GIB
    # An unshelve brings the guest's own disk back: the root disk is built on its shelve snapshot.
    source = request.restore_from or request.image
    if source is None:
        qemu_img.create(partial, "qcow2", wanted)
    else:
        cached = cache.fetch(source)
        base = contained(cached.path, cache.directory)
        qemu_img.create_overlay(base, cached.disk_format, partial)
        if wanted > cached.virtual_size:
            qemu_img.resize(partial, "qcow2", wanted)
        files.record_base(instance_uuid, base)
    os.replace(partial, files.disk(instance_uuid))


def check_received_disk(path: Path, cache: ImageCache) -> None:
    """Refuse a disk that came from another host unless it is a qcow2 whose backing file, if
    any, is an image in this host's cache (and there), and that has no external data file."""
    details = qemu_img.info(path, "qcow2")
    if details.get("format") != "qcow2":
        raise DriverError(f"the received disk is {details.get('format')!r}, not qcow2")
    if (details.get("format-specific") or {}).get("data", {}).get("data-file"):
        raise DriverError("the received disk refers to an external data file; refused")
    backing = details.get("full-backing-filename") or details.get("backing-filename")
    if backing:
        base = contained(backing, cache.directory)
        if not base.is_file():
            raise DriverError(f"the received disk is built on {base.name}, which is not in "
                              "this host's image cache")
