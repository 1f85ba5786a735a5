"""What a running guest gets plugged into it or injected: NICs and volumes in and out, and an NMI
for a crash dump."""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import libvirt

from compute_agent.domain_xml import (
    disk_targets,
    interface_elements,
    interface_xml,
    volume_disk_xml,
    volume_disks,
    with_interfaces,
    with_volume,
    without_volume,
)
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.power import WrongState
from compute_agent.drivers.libvirt.states import domain_power_state
from compute_agent.messages import BlockDevice
from compute_agent.network.base import Nic

LOG = logging.getLogger(__name__)

# How long a guest has to let go of a volume's disk (Nova retries its detach for about as long).
VOLUME_DETACH_TIMEOUT = 60.0
VOLUME_DETACH_POLL = 0.5


class DevicesMixin(LibvirtBase):
    def trigger_crash_dump(self, instance_uuid: str) -> str:
        def inject(domain: libvirt.virDomain) -> str:
            state, _ = domain.state()
            # A paused guest takes the NMI too; it handles it once it runs again.
            if state not in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED):
                raise WrongState(f"instance {instance_uuid} is not running; no crash dump")
            domain.injectNMI(0)
            return domain_power_state(domain)

        return self._act("crash dump", instance_uuid, inject)

    def set_interfaces(self, instance_uuid: str, nics: Sequence[str | Nic]) -> str:
        by_mac = {(nic if isinstance(nic, str) else nic.mac_address).lower(): nic for nic in nics}

        def apply(domain: libvirt.virDomain) -> str:
            defined = interface_elements(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if domain.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            try:
                for mac, nic in by_mac.items():
                    if mac not in defined:
                        domain.attachDeviceFlags(interface_xml(nic), flags)
                for mac, element in defined.items():
                    if mac not in by_mac:
                        # As defined: a bridge NIC is found by what its definition says.
                        domain.detachDeviceFlags(element, flags)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
                # A hypervisor without hot-plug (libvirt's test driver): the definition changes,
                # and the guest has its NICs from its next boot on.
                LOG.info("no hot-plug for %s; its NICs change at its next boot", instance_uuid)
                xml = with_interfaces(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                                      list(by_mac.values()))
                domain.connect().defineXML(xml)
            return domain_power_state(domain)

        return self._act("interface change", instance_uuid, apply)

    # --- volumes (docs/volumes.md): network disks plugged in and out, live and in the definition

    def attach_volume(self, instance_uuid: str, device: BlockDevice) -> str:
        disk_xml = volume_disk_xml(device)  # a connection it cannot use fails before libvirt

        def attach(domain: libvirt.virDomain) -> str:
            defined = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            if device.volume_id in volume_disks(defined):
                return domain_power_state(domain)  # a repeated attach: the work is done
            if device.device in disk_targets(defined):
                raise DriverError(f"instance {instance_uuid} already has a disk {device.device}")
            try:
                domain.attachDeviceFlags(disk_xml, self._device_flags(domain))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
                LOG.info("no hot-plug for %s; volume %s is in its definition", instance_uuid,
                         device.volume_id)
                domain.connect().defineXML(with_volume(defined, device))
            return domain_power_state(domain)

        return self._act("volume attach", instance_uuid, attach)

    def detach_volume(self, instance_uuid: str, volume_id: str,
                      timeout: float = VOLUME_DETACH_TIMEOUT) -> str:
        """Ask the guest to let go of the disk, wait until qemu has removed it (a guest must
        release it: pulling it from under a mounted filesystem is what the wait avoids), then
        drop it from the definition. A guest that keeps it past `timeout` is a DriverError and
        the volume stays attached."""

        def unplug_live(domain: libvirt.virDomain) -> bool:
            if not domain.isActive():
                return False
            element = volume_disks(domain.XMLDesc(0)).get(volume_id)
            if element is None:
                return False
            alias = ET.fromstring(element).find("alias")
            try:
                if alias is not None and alias.get("name"):
                    # Asynchronous: detachDeviceFlags would wait for the guest (5 s in qemu's
                    # driver) holding the host's one connection; the wait is ours, below.
                    domain.detachDeviceAlias(alias.get("name"), libvirt.VIR_DOMAIN_AFFECT_LIVE)
                else:
                    domain.detachDeviceFlags(element, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                    return False  # the test driver: only its definition holds the disk
                raise
            return True

        def still_live(domain: libvirt.virDomain) -> bool:
            return domain.isActive() and volume_id in volume_disks(domain.XMLDesc(0))

        if self._act("volume detach", instance_uuid, unplug_live):
            deadline = time.monotonic() + timeout
            asked_again = False
            while self._act("volume detach", instance_uuid, still_live):
                now = time.monotonic()
                if now >= deadline:
                    raise DriverError(f"the guest did not release volume {volume_id} within "
                                      f"{timeout:.0f} s; it stays attached")
                if not asked_again and now >= deadline - timeout / 2:
                    # A guest still booting can miss the first request, as Nova finds too.
                    asked_again = True
                    self._act("volume detach", instance_uuid, unplug_live)
                time.sleep(VOLUME_DETACH_POLL)

        def unplug_config(domain: libvirt.virDomain) -> str:
            defined = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            if volume_id in volume_disks(defined):
                domain.connect().defineXML(without_volume(defined, volume_id))
            return domain_power_state(domain)

        return self._act("volume detach", instance_uuid, unplug_config)

    @staticmethod
    def _device_flags(domain: libvirt.virDomain) -> int:
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if domain.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags
