"""libvirt's states mapped onto the contract's power state names, and kept in step with what
happens to the guest."""

from __future__ import annotations

from collections.abc import Callable

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.drivers.libvirt import LibvirtDriver, power_state_from_libvirt

from .conftest import listed

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


@pytest.mark.parametrize(
    "state, reason, expected",
    [
        (libvirt.VIR_DOMAIN_NOSTATE, 0, msg.POWER_NOSTATE),
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, msg.POWER_RUNNING),
        (libvirt.VIR_DOMAIN_BLOCKED, 0, msg.POWER_RUNNING),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, msg.POWER_PAUSED),
        (libvirt.VIR_DOMAIN_SHUTDOWN, 0, msg.POWER_SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, msg.POWER_SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, msg.POWER_SHUTDOWN),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, msg.POWER_CRASHED),
        (libvirt.VIR_DOMAIN_CRASHED, 0, msg.POWER_CRASHED),
        (libvirt.VIR_DOMAIN_PMSUSPENDED, 0, msg.POWER_SUSPENDED),
        (999, 0, msg.POWER_NOSTATE),
    ],
)
def test_libvirt_states_map_to_contract_names(state: int, reason: int, expected: str) -> None:
    assert power_state_from_libvirt(state, reason) == expected


def test_power_states_follow_what_happens_to_the_guest(
    driver: LibvirtDriver, spawn_request: SpawnRequestFactory, raw_conn: libvirt.virConnect
) -> None:
    request = spawn_request()
    driver.spawn(request)
    domain = raw_conn.lookupByUUIDString(request.instance_uuid)
    domain.suspend()
    assert driver.power_state(request.instance_uuid) == msg.POWER_PAUSED
    assert listed(driver)[request.instance_uuid] == msg.POWER_PAUSED
    domain.resume()
    assert driver.power_state(request.instance_uuid) == msg.POWER_RUNNING
    domain.shutdown()
    assert driver.power_state(request.instance_uuid) == msg.POWER_SHUTDOWN
