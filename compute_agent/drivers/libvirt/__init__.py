"""The libvirt driver: the only package of the agent that imports libvirt.

It works on any libvirt URI. `test:///default` is libvirt's in-process test hypervisor, the everyday
double: no daemon, one state shared by all connections in the process, and that state is dropped
when the process's last connection to it closes (so close() on the test driver forgets every
domain, as a host reboot would). `qemu:///system` runs real guests.

Import LibvirtDriver from here; the modules inside are split by role (see LibvirtDriver).
"""

from compute_agent.drivers.libvirt.connection import (
    DEFAULT_INSTANCES_DIR,
    NoSuchInstance,
    default_domain_type,
)
from compute_agent.drivers.libvirt.driver import LibvirtDriver
from compute_agent.drivers.libvirt.power import WrongState
from compute_agent.drivers.libvirt.states import power_state_from_libvirt

__all__ = [
    "DEFAULT_INSTANCES_DIR",
    "LibvirtDriver",
    "NoSuchInstance",
    "WrongState",
    "default_domain_type",
    "power_state_from_libvirt",
]
