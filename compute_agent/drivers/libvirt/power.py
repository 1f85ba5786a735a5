"""A domain's power state and the power actions: start, stop, reboot, pause, unpause, suspend,
resume.

Suspend is libvirt's managed save: the guest's memory goes to a file and its qemu process ends,
which works the same under TCG and KVM and frees the host's RAM; resume (or start) restores it.
Pause is libvirt's suspend: the vCPUs stop, the memory stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.states import domain_power_state

LOG = logging.getLogger(__name__)

# How often a wait for a guest to power off looks again.
POLL_INTERVAL = 0.25


class WrongState(DriverError):
    pass


class PowerMixin(LibvirtBase):
    def power_state(self, instance_uuid: str) -> str:
        instance_uuid = canonical_uuid(instance_uuid)

        def state_on(conn: libvirt.virConnect) -> str:
            domain = self._lookup(conn, instance_uuid)
            return msg.POWER_NOSTATE if domain is None else domain_power_state(domain)

        return self._call(f"power state of {instance_uuid}", state_on)

    def _wait_for_power_off(self, instance_uuid: str, timeout: float) -> bool:
        """Poll (without holding the lock between looks) until the domain is inactive."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._act("power-off wait", instance_uuid, lambda d: bool(d.isActive())):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def start(self, instance_uuid: str) -> str:
        def start_domain(domain: libvirt.virDomain) -> str:
            if not domain.isActive():
                self._container_starting(instance_uuid)
                domain.create()  # restores the saved memory of a suspended guest
                self._container_started(domain)
            return domain_power_state(domain)

        return self._act("start", instance_uuid, start_domain)

    def stop(self, instance_uuid: str, timeout: float) -> str:
        def begin(domain: libvirt.virDomain) -> bool:
            """Return True when nothing is left to wait for."""
            if not domain.isActive():
                if not self.is_container and domain.hasManagedSaveImage(0):
                    domain.managedSaveRemove(0)  # a stopped guest boots afresh, not from memory
                return True
            state, _ = domain.state()
            # A paused guest cannot hear the ACPI request, so waiting would only waste the timeout.
            if timeout <= 0 or state == libvirt.VIR_DOMAIN_PAUSED:
                domain.destroy()
                return True
            self._shutdown(domain)
            return False

        finished = self._act("stop", instance_uuid, begin)
        if not finished and not self._wait_for_power_off(instance_uuid, timeout):
            LOG.info("%s did not shut down within %s s, destroying it", instance_uuid, timeout)
            self._act("stop", instance_uuid, self._destroy_if_active)
        return self.power_state(instance_uuid)

    @staticmethod
    def _destroy_if_active(domain: libvirt.virDomain) -> None:
        try:
            if domain.isActive():
                domain.destroy()
        except libvirt.libvirtError:
            if domain.isActive():
                raise  # it shut down by itself between the two calls otherwise

    def reboot(self, instance_uuid: str, *, hard: bool, timeout: float) -> str:
        def begin(domain: libvirt.virDomain) -> bool:
            """Return True when the soft way is under way, False when a hard one is needed."""
            state, _ = domain.state()
            if hard or state != libvirt.VIR_DOMAIN_RUNNING:
                return False  # a guest that is not running cannot take part in a soft reboot
            self._shutdown(domain)
            return True

        soft = self._act("reboot", instance_uuid, begin)
        if soft and not self._wait_for_power_off(instance_uuid, timeout):
            LOG.info("%s did not shut down within %s s, rebooting it hard", instance_uuid, timeout)

        def power_cycle(domain: libvirt.virDomain) -> str:
            self._destroy_if_active(domain)
            if not self.is_container and domain.hasManagedSaveImage(0):
                domain.managedSaveRemove(0)
            self._container_starting(instance_uuid)
            domain.create()
            self._container_started(domain)
            return domain_power_state(domain)

        return self._act("reboot", instance_uuid, power_cycle)

    def _transition(
        self,
        what: str,
        instance_uuid: str,
        *,
        done: tuple[str, ...],
        allowed: tuple[str, ...],
        action: Callable[[libvirt.virDomain], object],
    ) -> str:
        def run(domain: libvirt.virDomain) -> str:
            state = domain_power_state(domain)
            if state in done:
                return state
            if state not in allowed:
                raise WrongState(f"cannot {what} instance {instance_uuid}: it is {state}")
            action(domain)
            return domain_power_state(domain)

        return self._act(what, instance_uuid, run)

    def pause(self, instance_uuid: str) -> str:
        return self._transition(
            "pause", instance_uuid, done=(msg.POWER_PAUSED,), allowed=(msg.POWER_RUNNING,),
            action=lambda d: d.suspend(),
        )

    def unpause(self, instance_uuid: str) -> str:
        return self._transition(
            "unpause", instance_uuid, done=(msg.POWER_RUNNING,), allowed=(msg.POWER_PAUSED,),
            action=lambda d: d.resume(),
        )

    def suspend(self, instance_uuid: str) -> str:
        return self._transition(
            "suspend", instance_uuid, done=(msg.POWER_SUSPENDED,),
            allowed=(msg.POWER_RUNNING, msg.POWER_PAUSED), action=lambda d: d.managedSave(0),
        )

    def resume(self, instance_uuid: str) -> str:
        return self._transition(
            "resume", instance_uuid, done=(msg.POWER_RUNNING,), allowed=(msg.POWER_SUSPENDED,),
            action=lambda d: d.create(),
        )
