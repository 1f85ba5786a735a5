"""Rescue: the guest boots from a fresh disk made from a rescue image, its own root disk attached
second (vdb) so the rescue system can repair it; unrescue boots it from its own disk again.

The rescue definition is marked in the domain's metadata (domain_xml.is_rescue), so a repeated
rescue or unrescue can tell what is defined and finds the work done. The rescue disk is a
standalone copy of the image (no backing file), so the image cache's sweep can never pull it from
under a rescued guest; it lives in the instance's directory and goes with it.
"""

from __future__ import annotations

import logging
import os

import libvirt

from compute_agent import messages as msg
from compute_agent import qemu_img
from compute_agent.domain_xml import (
    DiskSpec,
    build_domain_xml,
    canonical_uuid,
    is_rescue,
    marked_rescue,
)
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.states import domain_power_state
from compute_agent.instance_disks import ROOT_DEVICE, prepare
from compute_agent.instance_files import contained

LOG = logging.getLogger(__name__)

RESCUE_DISK_NAME = "disk.rescue"
RESCUED_ROOT_DEVICE = "vdb"  # where the guest's own disk is while it is rescued


class RescueMixin(LibvirtBase):
    def rescue(self, request: msg.RescueRequest) -> str:
        instance_uuid = canonical_uuid(request.instance_uuid)
        if request.device or request.bus:
            raise DriverError("stable device rescue (hw_rescue_device/hw_rescue_bus) is not "
                              "supported; use an image without those properties")
        current = self._inactive_xml(instance_uuid)
        if is_rescue(current) and self._is_active(instance_uuid):
            LOG.info("instance %s is rescued already", instance_uuid)
            return self._act("rescue", instance_uuid, domain_power_state)
        if not self.has_disks:
            xml = marked_rescue(current)
        else:
            if request.spawn is None or request.image is None:
                raise DriverError("a rescue needs the instance's definition and a rescue image")
            xml = self._rescue_xml(request.spawn, request.image)
        return self._redefine_and_start("rescue", instance_uuid, xml)

    def unrescue(self, request: msg.SpawnRequest) -> str:
        instance_uuid = canonical_uuid(request.instance_uuid)
        current = self._inactive_xml(instance_uuid)
        if not is_rescue(current) and self._is_active(instance_uuid):
            LOG.info("instance %s is not rescued, leaving it as it is", instance_uuid)
            return self._act("unrescue", instance_uuid, domain_power_state)
        self._act("unrescue", instance_uuid, self._power_off)
        # spawn() defines the guest afresh over the inactive rescue definition, and keeps its disk.
        state = self.spawn(request)
        if self.has_disks:
            self.files.path(instance_uuid, RESCUE_DISK_NAME).unlink(missing_ok=True)
        return state

    # --- helpers

    def _inactive_xml(self, instance_uuid: str) -> str:
        return self._act("definition", instance_uuid,
                         lambda d: str(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))

    def _is_active(self, instance_uuid: str) -> bool:
        return self._act("state", instance_uuid, lambda d: bool(d.isActive()))

    @staticmethod
    def _power_off(domain: libvirt.virDomain) -> None:
        if domain.isActive():
            domain.destroy()

    def _redefine_and_start(self, what: str, instance_uuid: str, xml: str) -> str:
        def on(conn: libvirt.virConnect) -> str:
            domain = self._lookup(conn, instance_uuid)
            if domain is not None and domain.isActive():
                domain.destroy()
            domain = conn.defineXML(xml)
            domain.create()
            return domain_power_state(domain)

        return self._call(f"{what} of {instance_uuid}", on)

    def _rescue_xml(self, spawn: msg.SpawnRequest, image: msg.ImageRef) -> str:
        """The guest's definition with the rescue disk first and its own root disk second.
        Files are made here, outside the connection lock (downloads, qemu-img)."""
        instance_uuid = canonical_uuid(spawn.instance_uuid)
        prepared = prepare(spawn, self.files, self.image_cache)  # its own disk is kept as it is
        rescue_disk = self.files.path(instance_uuid, RESCUE_DISK_NAME)
        if not rescue_disk.exists():
            cached = self.image_cache.fetch(image)
            base = contained(cached.path, self.image_cache.directory)
            partial = self.files.path(instance_uuid, f".{RESCUE_DISK_NAME}.partial")
            partial.unlink(missing_ok=True)
            qemu_img.convert(base, cached.disk_format, partial, "qcow2", force_share=False)
            os.replace(partial, rescue_disk)
        disks = [DiskSpec(path=os.fspath(rescue_disk), target_dev=ROOT_DEVICE, bus="virtio")]
        for disk in prepared.disks:
            if disk.target_dev == ROOT_DEVICE:
                disks.append(DiskSpec(path=disk.path, target_dev=RESCUED_ROOT_DEVICE,
                                      bus=disk.bus, driver_type=disk.driver_type))
            else:
                disks.append(disk)
        self._ensure_vnc_socket_dir()
        return build_domain_xml(
            spawn, domain_type=self.domain_type, vnc_listen=self.vnc_listen,
            vnc_socket=self.vnc_socket_path(instance_uuid), disks=disks,
            serial_log_path=prepared.serial_log_path,
            mac_addresses=self.nics(spawn.networks),
            video_model="vga", machine="pc", rescue=True,
        )
