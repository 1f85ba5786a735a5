"""A standalone qcow2 copy of an instance's root disk, made while the guest is paused."""

from __future__ import annotations

import libvirt

from compute_agent import messages as msg
from compute_agent import qemu_img
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase, NoSuchInstance
from compute_agent.instance_files import contained

# What a snapshot on the test driver (which has no disks) uploads: an empty qcow2 of this size.
TEST_SNAPSHOT_SIZE = 1024 * 1024


class SnapshotMixin(LibvirtBase):
    def snapshot(self, instance_uuid: str, target: str) -> str:
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
                domain.suspend()  # qemu flushes the disk when it stops the vCPUs
                return True
            return False

        paused_here = self._act("snapshot", instance_uuid, pause_if_running)
        try:
            disk = self.files.disk(instance_uuid)
            if not disk.is_file():
                raise DriverError(f"instance {instance_uuid} has no root disk on this host")
            qemu_img.convert(disk, "qcow2", target_path, "qcow2", force_share=True)
        finally:
            if paused_here:
                self._act("snapshot", instance_uuid, lambda d: d.resume())
        return "qcow2"
