"""An image of an instance's root, made while the guest is paused: a standalone qcow2 copy of a
VM's root disk, or a gzip'd tar of a container's root filesystem (its merged view, taken while
libvirt's LXC driver holds the container frozen in its freezer cgroup)."""

from __future__ import annotations

import libvirt

from compute_agent import container_rootfs, qemu_img
from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase, NoSuchInstance
from compute_agent.instance_files import contained

# What a snapshot on the test driver (which has no disks) uploads: an empty qcow2 of this size.
TEST_SNAPSHOT_SIZE = 1024 * 1024


class SnapshotMixin(LibvirtBase):
    def snapshot(self, instance_uuid: str, target: str) -> str:
        """Write the image to `target`; its disk format (the API registered the image with the
        same: cloud/compute/guest_kinds.saved_image_fields)."""
        instance_uuid = canonical_uuid(instance_uuid)
        self.files.ensure_dirs()
        target_path = contained(target, self.files.snapshot_dir)
        if not self.has_disks:
            if self.power_state(instance_uuid) == msg.POWER_NOSTATE:
                raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
            qemu_img.create(target_path, "qcow2", TEST_SNAPSHOT_SIZE)
            return "qcow2"

        def pause_if_running(domain: libvirt.virDomain) -> bool:
            state, _ = domain.state()
            if state == libvirt.VIR_DOMAIN_RUNNING:
                # qemu flushes the disk when it stops the vCPUs; a container's processes are
                # frozen, so none writes to its tree while it is read.
                domain.suspend()
                return True
            return False

        paused_here = self._act("snapshot", instance_uuid, pause_if_running)

        def resume() -> None:  # once, whichever asks first: the archive or the way out
            nonlocal paused_here
            if paused_here:
                paused_here = False
                self._act("snapshot", instance_uuid, lambda d: d.resume())

        try:
            if self.is_container:
                root = container_rootfs.ensure_mounted(self.files, self.image_cache,
                                                       instance_uuid)
                # Frozen while its tree is read, running again while the tar is compressed.
                container_rootfs.archive(root, target_path, then=resume)
                return "raw"  # a tar, registered raw/compressed (compute_agent/container_rootfs.py)
            disk = self.files.disk(instance_uuid)
            if not disk.is_file():
                raise DriverError(f"instance {instance_uuid} has no root disk on this host")
            qemu_img.convert(disk, "qcow2", target_path, "qcow2", force_share=True)
        finally:
            resume()
        return "qcow2"
