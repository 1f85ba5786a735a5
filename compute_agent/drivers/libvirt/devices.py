"""What a running guest gets plugged into it or injected: NICs in and out, and an NMI for a crash
dump."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import libvirt

from compute_agent.domain_xml import interface_elements, interface_xml, with_interfaces
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.power import WrongState
from compute_agent.drivers.libvirt.states import domain_power_state
from compute_agent.network.base import Nic

LOG = logging.getLogger(__name__)


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
