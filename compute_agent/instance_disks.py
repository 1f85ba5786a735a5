"""The files a real guest boots from: its root disk (an overlay on the cached image) and its config
drive, made before the domain is defined. libvirt's test driver has no disks and never comes here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from compute_agent import config_drive, qemu_img
from compute_agent.domain_xml import DiskSpec, canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.image_cache import ImageCache
from compute_agent.instance_files import InstanceFiles, contained
from compute_agent.messages import SpawnRequest

GIB = 1024**3


@dataclass(frozen=True)
class PreparedInstance:
    disks: list[DiskSpec]
    serial_log_path: str


def prepare(request: SpawnRequest, files: InstanceFiles, cache: ImageCache) -> PreparedInstance:
    """Make the instance's directory, root disk and config drive; return what the domain needs.

    An existing root disk is kept (a retried spawn or a resize must not wipe what the guest wrote),
    only grown to the flavor if it is smaller. A new one is made under a temporary name and
    renamed, so a disk at its real name is always a whole one.
    """
    instance_uuid = canonical_uuid(request.instance_uuid)
    if request.image is None:
        raise DriverError("a real guest needs an image to boot from (volumes are not supported)")
    directory = files.make_instance_dir(instance_uuid)
    disk = files.disk(instance_uuid)
    if not disk.exists():
        cached = cache.fetch(request.image)
        base = contained(cached.path, cache.directory)
        partial = contained(directory / ".disk.partial", directory)
        partial.unlink(missing_ok=True)
        qemu_img.create_overlay(base, cached.disk_format, partial)
        wanted = request.root_gb * GIB
        if wanted > cached.virtual_size:
            qemu_img.resize(partial, "qcow2", wanted)
        files.record_base(instance_uuid, base)
        os.replace(partial, disk)
    else:
        # A resize to a larger flavor grows the disk the guest already has; nothing shrinks one.
        wanted = request.root_gb * GIB
        if wanted > int(qemu_img.info(disk, "qcow2")["virtual-size"]):
            qemu_img.resize(disk, "qcow2", wanted)
    drive = files.config_drive(instance_uuid)
    config_drive.build(drive, request)
    return PreparedInstance(
        disks=[
            DiskSpec(path=os.fspath(disk), target_dev="vda", bus="virtio", driver_type="qcow2"),
            DiskSpec(
                path=os.fspath(drive),
                target_dev="hdc",
                bus="ide",
                driver_type="raw",
                device="cdrom",
                read_only=True,
            ),
        ],
        serial_log_path=os.fspath(files.console_log(instance_uuid)),
    )
