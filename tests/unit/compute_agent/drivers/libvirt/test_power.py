"""Power actions on libvirt's test driver: what each does to the domain, that asking again is a
success, and which are refused."""

from __future__ import annotations

from collections.abc import Callable

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import LibvirtDriver


def test_stop_shuts_the_guest_down_and_stopping_again_succeeds(
    driver: LibvirtDriver, running: str
) -> None:
    assert driver.stop(running, timeout=5) == msg.POWER_SHUTDOWN
    assert driver.stop(running, timeout=5) == msg.POWER_SHUTDOWN


def test_stop_with_no_timeout_pulls_the_plug_at_once(driver: LibvirtDriver, running: str) -> None:
    assert driver.stop(running, timeout=0) == msg.POWER_SHUTDOWN


def test_start_runs_a_stopped_guest_and_starting_again_succeeds(
    driver: LibvirtDriver, running: str
) -> None:
    driver.stop(running, timeout=0)
    assert driver.start(running) == msg.POWER_RUNNING
    assert driver.start(running) == msg.POWER_RUNNING


def test_unpausing_or_resuming_a_running_guest_is_a_success(
    driver: LibvirtDriver, running: str
) -> None:
    assert driver.unpause(running) == msg.POWER_RUNNING
    assert driver.resume(running) == msg.POWER_RUNNING


def test_pause_and_unpause_are_idempotent(driver: LibvirtDriver, running: str) -> None:
    assert driver.pause(running) == msg.POWER_PAUSED
    assert driver.pause(running) == msg.POWER_PAUSED
    assert driver.unpause(running) == msg.POWER_RUNNING
    assert driver.unpause(running) == msg.POWER_RUNNING


def test_suspend_saves_the_guest_and_resume_brings_it_back(
    driver: LibvirtDriver, running: str
) -> None:
    assert driver.suspend(running) == msg.POWER_SUSPENDED
    assert driver.suspend(running) == msg.POWER_SUSPENDED
    assert driver.power_state(running) == msg.POWER_SUSPENDED
    assert {d.uuid: d.power_state for d in driver.list_domains()}[running] == msg.POWER_SUSPENDED
    assert driver.resume(running) == msg.POWER_RUNNING
    assert driver.resume(running) == msg.POWER_RUNNING


def test_a_paused_guest_can_be_suspended(driver: LibvirtDriver, running: str) -> None:
    driver.pause(running)
    assert driver.suspend(running) == msg.POWER_SUSPENDED


def test_stopping_a_suspended_guest_discards_its_saved_memory(
    driver: LibvirtDriver, running: str
) -> None:
    driver.suspend(running)
    assert driver.stop(running, timeout=5) == msg.POWER_SHUTDOWN


@pytest.mark.parametrize("hard", [False, True])
def test_reboot_leaves_the_guest_running(driver: LibvirtDriver, running: str, hard: bool) -> None:
    assert driver.reboot(running, hard=hard, timeout=5) == msg.POWER_RUNNING


def test_a_soft_reboot_of_a_stopped_guest_boots_it(driver: LibvirtDriver, running: str) -> None:
    driver.stop(running, timeout=0)
    assert driver.reboot(running, hard=False, timeout=5) == msg.POWER_RUNNING


@pytest.mark.parametrize(
    "action, setup",
    [
        ("unpause", "stop"),  # nothing to unpause: it is not even running
        ("resume", "stop"),  # stopped is not suspended: start it instead
        ("pause", "stop"),
        ("suspend", "stop"),
    ],
)
def test_an_action_from_the_wrong_state_is_refused(
    driver: LibvirtDriver, running: str, action: str, setup: str | None
) -> None:
    if setup == "stop":
        driver.stop(running, timeout=0)
    with pytest.raises(DriverError, match=f"cannot {action}"):
        getattr(driver, action)(running)


@pytest.mark.parametrize("action", ["start", "pause", "unpause", "suspend", "resume"])
def test_an_action_on_a_missing_instance_is_refused(
    driver: LibvirtDriver, new_uuid: Callable[[], str], action: str
) -> None:
    with pytest.raises(DriverError, match="no domain"):
        getattr(driver, action)(new_uuid())


def test_actions_refuse_a_uuid_that_is_not_one(driver: LibvirtDriver) -> None:
    for action in ("start", "pause", "unpause", "suspend", "resume"):
        with pytest.raises(ValueError):
            getattr(driver, action)("../../etc")


def test_libvirt_is_still_the_truth_after_an_outside_change(
    driver: LibvirtDriver, running: str
) -> None:
    conn = libvirt.open("test:///default")
    try:
        conn.lookupByUUIDString(running).suspend()
        assert driver.pause(running) == msg.POWER_PAUSED  # already paused: success
    finally:
        conn.close()
