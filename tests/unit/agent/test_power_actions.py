"""Instance actions on libvirt's test driver: what each does to the domain, that asking again is
a success, what the manager reports for each, and how a refused action is reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.manager import ComputeManager

from .conftest import needs_qemu_img
from .fakes import RecordingReporter
from .image_server import ImageServer

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


@pytest.fixture
def manager(driver: LibvirtDriver, reporter: RecordingReporter) -> ComputeManager:
    return ComputeManager("host-a", driver, reporter)


@pytest.fixture
def running(manager: ComputeManager, spawn_request: SpawnRequestFactory) -> str:
    request = spawn_request()
    assert manager.spawn(request).event == msg.EVENT_SPAWNED
    return request.instance_uuid


def power(instance_uuid: str, **fields: object) -> msg.PowerRequest:
    return msg.PowerRequest(request_id="req-act", instance_uuid=instance_uuid, **fields)  # type: ignore[arg-type]


# --- the driver --------------------------------------------------------------------------------


def test_the_test_driver_makes_no_files_for_an_instance(
    driver: LibvirtDriver, running: str
) -> None:
    assert not (driver.instances_dir / running).exists()


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


def test_console_output_on_the_test_driver_is_a_synthetic_log_cut_to_length(
    driver: LibvirtDriver, running: str
) -> None:
    output = driver.console_output(running, 3)
    assert len(output.split("\n")) == 3  # Tempest counts lines exactly so
    assert running in output and "test driver" in output
    assert len(driver.console_output(running, None).splitlines()) == 10


def test_console_output_reads_the_tail_of_the_log(tmp_path: Path) -> None:
    from compute_agent.drivers.libvirt.console import _tail

    log = tmp_path / "console.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert _tail(log, 3) == "line 97\nline 98\nline 99"  # no newline after the last, as Nova
    assert _tail(log, None).count("\n") == 100
    assert _tail(log, 0) == ""
    assert _tail(tmp_path / "missing.log", 5) == ""


def test_actions_refuse_a_uuid_that_is_not_one(driver: LibvirtDriver) -> None:
    for action in ("start", "pause", "unpause", "suspend", "resume"):
        with pytest.raises(ValueError):
            getattr(driver, action)("../../etc")


# --- the manager -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, event, state",
    [
        ("stop", msg.EVENT_STOPPED, msg.POWER_SHUTDOWN),
        ("pause", msg.EVENT_PAUSED, msg.POWER_PAUSED),
        ("suspend", msg.EVENT_SUSPENDED, msg.POWER_SUSPENDED),
    ],
)
def test_each_action_reports_its_own_event_with_the_new_power_state_then_the_host(
    manager: ComputeManager, reporter: RecordingReporter, running: str,
    method: str, event: str, state: str,
) -> None:
    reports_before = len(reporter.reports)
    result = getattr(manager, method)(power(running, timeout=5))
    assert result == reporter.events[-1]
    assert (result.event, result.power_state, result.request_id) == (event, state, "req-act")
    assert result.host == "host-a"
    assert len(reporter.reports) == reports_before + 1


def test_the_way_back_reports_started_unpaused_and_resumed(
    manager: ComputeManager, running: str
) -> None:
    manager.stop(power(running, timeout=0))
    assert manager.start(power(running)).event == msg.EVENT_STARTED
    manager.pause(power(running))
    assert manager.unpause(power(running)).event == msg.EVENT_UNPAUSED
    manager.suspend(power(running))
    event = manager.resume(power(running))
    assert (event.event, event.power_state) == (msg.EVENT_RESUMED, msg.POWER_RUNNING)


@pytest.mark.parametrize("reboot_type", ["SOFT", "HARD", "soft"])
def test_reboot_reports_rebooted(
    manager: ComputeManager, running: str, reboot_type: str
) -> None:
    event = manager.reboot(
        msg.RebootRequest(request_id="r", instance_uuid=running, reboot_type=reboot_type, timeout=5)
    )
    assert (event.event, event.power_state) == (msg.EVENT_REBOOTED, msg.POWER_RUNNING)


def test_an_unknown_reboot_type_is_a_failed_action(manager: ComputeManager, running: str) -> None:
    event = manager.reboot(
        msg.RebootRequest(request_id="r", instance_uuid=running, reboot_type="WARM")
    )
    assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_REBOOT)
    assert "SOFT or HARD" in event.message


def test_a_refused_action_reports_action_failed_with_the_reason_and_the_state(
    manager: ComputeManager, reporter: RecordingReporter, running: str
) -> None:
    manager.stop(power(running, timeout=0))
    event = manager.pause(power(running))
    assert event.event == msg.EVENT_ACTION_FAILED
    assert event.action == msg.ACTION_PAUSE
    assert "it is shutdown" in event.message
    assert event.power_state == msg.POWER_SHUTDOWN
    assert reporter.events[-1] == event


def test_an_action_on_an_instance_destroyed_here_fails_without_touching_the_hypervisor(
    manager: ComputeManager, running: str
) -> None:
    manager.destroy(msg.DestroyRequest(request_id="r", instance_uuid=running))
    event = manager.start(power(running))
    assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_START)
    assert "deleted" in event.message
    assert manager.driver.power_state(running) == msg.POWER_NOSTATE


def test_console_output_is_reported_in_the_event(manager: ComputeManager, running: str) -> None:
    event = manager.console_output(
        msg.ConsoleOutputRequest(request_id="r", instance_uuid=running, length=5)
    )
    assert event.event == msg.EVENT_CONSOLE_OUTPUT
    assert running in event.output
    assert event.power_state == msg.POWER_RUNNING


def test_every_action_round_trips_through_the_contract() -> None:
    for request in (
        msg.PowerRequest(request_id="r", instance_uuid="u", timeout=3),
        msg.RebootRequest(request_id="r", instance_uuid="u", reboot_type=msg.REBOOT_HARD),
        msg.ConsoleOutputRequest(request_id="r", instance_uuid="u", length=None),
        msg.SnapshotRequest(request_id="r", instance_uuid="u", image_id="i", upload_url="http://x",
                            token="t"),
    ):
        assert type(request).from_dict(request.to_dict()) == request
    event = msg.InstanceEvent(request_id="r", instance_uuid="u", host="h", event="x",
                              action="stop", output="o", image_id="i")
    assert msg.InstanceEvent.from_dict(event.to_dict()) == event
    assert "SECRET" not in repr(msg.SnapshotRequest("r", "u", "i", "http://x", token="SECRET"))
    assert "SECRET" not in repr(msg.ImageRef(id="i", token="SECRET"))


@needs_qemu_img
def test_a_snapshot_is_uploaded_with_its_token_and_leaves_no_copy_behind(
    manager: ComputeManager, driver: LibvirtDriver, running: str, image_server: ImageServer
) -> None:
    image_server.required_token = "SNAPSHOT-TOKEN"
    event = manager.snapshot(
        msg.SnapshotRequest(
            request_id="r", instance_uuid=running, image_id="img-snap",
            upload_url=image_server.url("v2/images/img-snap/file"), token="SNAPSHOT-TOKEN",
        )
    )
    assert (event.event, event.image_id) == (msg.EVENT_SNAPSHOT_UPLOADED, "img-snap")
    body = image_server.uploads["/v2/images/img-snap/file"]
    assert body[:4] == b"QFI\xfb"  # a qcow2 image
    assert list(Path(driver.scratch_dir).iterdir()) == []
    assert event.power_state == msg.POWER_RUNNING


@needs_qemu_img
def test_a_refused_upload_is_a_failed_snapshot_that_names_no_token(
    manager: ComputeManager, driver: LibvirtDriver, running: str, image_server: ImageServer
) -> None:
    image_server.required_token = "the-right-one"
    event = manager.snapshot(
        msg.SnapshotRequest(
            request_id="r", instance_uuid=running, image_id="img-snap",
            upload_url=image_server.url("v2/images/img-snap/file"), token="WRONG-SECRET",
        )
    )
    assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_SNAPSHOT)
    assert "HTTP 401" in event.message
    assert "WRONG-SECRET" not in event.message + event.details
    assert list(Path(driver.scratch_dir).iterdir()) == []


@needs_qemu_img
def test_action_log_lines_carry_the_request_id_and_never_a_token(
    manager: ComputeManager, running: str, image_server: ImageServer, agent_log: list[str]
) -> None:
    manager.pause(msg.PowerRequest(request_id="req-pause-1", instance_uuid=running))
    manager.snapshot(
        msg.SnapshotRequest(
            request_id="req-snap-1", instance_uuid=running, image_id="i",
            upload_url=image_server.url("up"), token="SNAPSHOT-SECRET",
        )
    )
    assert any(line.startswith("req-pause-1 ") for line in agent_log)
    assert any(line.startswith("req-snap-1 ") for line in agent_log)
    assert not any("SNAPSHOT-SECRET" in line for line in agent_log)


def domain_sizes(instance_uuid: str) -> tuple[int, int]:
    conn = libvirt.open("test:///default")
    try:
        _, _, memory_kib, vcpus, _ = conn.lookupByUUIDString(instance_uuid).info()
    finally:
        conn.close()
    return vcpus, memory_kib // 1024


def test_resize_gives_the_running_guest_its_new_sizes_and_reports_resized(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request(vcpus=1, memory_mb=128)
    manager.spawn(request)
    bigger = msg.SpawnRequest.from_dict(request.to_dict() | {"vcpus": 2, "memory_mb": 256})
    event = manager.resize(bigger)
    assert (event.event, event.power_state) == (msg.EVENT_RESIZED, msg.POWER_RUNNING)
    assert domain_sizes(request.instance_uuid) == (2, 256)


def test_a_stopped_guest_stays_stopped_through_a_resize(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    manager.stop(power(request.instance_uuid, timeout=0))
    event = manager.resize(msg.SpawnRequest.from_dict(request.to_dict() | {"memory_mb": 256}))
    assert (event.event, event.power_state) == (msg.EVENT_RESIZED, msg.POWER_SHUTDOWN)


def test_resizing_an_instance_this_host_does_not_have_fails(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    event = manager.resize(spawn_request())
    assert (event.event, event.action) == (msg.EVENT_ACTION_FAILED, msg.ACTION_RESIZE)


def test_rebuild_recreates_a_running_guest_even_from_stopped(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    manager.stop(power(request.instance_uuid, timeout=0))
    event = manager.rebuild(request)
    assert (event.event, event.power_state) == (msg.EVENT_REBUILT, msg.POWER_RUNNING)


def test_the_image_cache_sweep_is_a_no_op_on_the_test_driver(manager: ComputeManager) -> None:
    assert manager.sweep_image_cache() == []


def test_libvirt_is_still_the_truth_after_an_outside_change(
    driver: LibvirtDriver, running: str
) -> None:
    conn = libvirt.open("test:///default")
    try:
        conn.lookupByUUIDString(running).suspend()
        assert driver.pause(running) == msg.POWER_PAUSED  # already paused: success
    finally:
        conn.close()
