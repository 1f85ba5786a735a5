"""libvirt's integer domain states, mapped onto the contract's power state names.

This is the one place that knows libvirt's numbers; everything past the driver speaks the names of
compute_agent.messages.
"""

from __future__ import annotations

import libvirt

from compute_agent import messages as msg

_POWER_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: msg.POWER_NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: msg.POWER_RUNNING,
    # Blocked on I/O is still a running guest.
    libvirt.VIR_DOMAIN_BLOCKED: msg.POWER_RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: msg.POWER_PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: msg.POWER_SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: msg.POWER_SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: msg.POWER_CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: msg.POWER_SUSPENDED,
}


def power_state_from_libvirt(state: int, reason: int = 0) -> str:
    """Map libvirt's (state, reason) pair to a contract power state name.

    A persistent domain whose qemu was killed shows as SHUTOFF with reason CRASHED; it is reported
    as crashed so that the control plane can tell it from a guest that was shut down on purpose.
    """
    if state == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
        return msg.POWER_CRASHED
    return _POWER_STATES.get(state, msg.POWER_NOSTATE)


def domain_power_state(domain: libvirt.virDomain) -> str:
    """The contract power state of a live domain object."""
    state, reason = domain.state()
    # A managed save (our suspend) leaves the domain shut off with its memory in a file; the
    # reason "saved" outlives a discarded save, so the save image itself is what counts.
    if state == libvirt.VIR_DOMAIN_SHUTOFF and domain.hasManagedSaveImage(0):
        return msg.POWER_SUSPENDED
    return power_state_from_libvirt(state, reason)
