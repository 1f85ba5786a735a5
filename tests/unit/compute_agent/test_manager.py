"""ComputeManager on the real libvirt test driver, with a reporter that records instead of
publishing: idempotence, the tombstone rule, cleanup after failures, what spawn, destroy and each
instance action report, and how a method declares the task it serves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import pytest

from compute_agent import host_load
from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.manager import ComputeManager, KeyedLocks, Tombstones, host_task, host_tasks
from compute_agent.reporter import ReportError

from .conftest import needs_qemu_img
from .fakes import RecordingReporter
from .image_server import ImageServer

SpawnRequestFactory = Callable[..., msg.SpawnRequest]


class FailingAfterSpawn(LibvirtDriver):
    """Fails after the domain is defined and running: a failure libvirt's test driver cannot be
    made to produce, and the worst case for cleanup."""

    def __init__(self, *args: object, cleanup_fails: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.cleanup_fails = cleanup_fails

    def spawn(self, request: msg.SpawnRequest) -> str:
        super().spawn(request)
        raise DriverError("injected: the guest never came up")

    def destroy(self, instance_uuid: str) -> None:
        if self.cleanup_fails:
            raise DriverError("injected: cannot remove the domain")
        super().destroy(instance_uuid)


class RefusingDestroy(LibvirtDriver):
    def destroy(self, instance_uuid: str) -> None:
        raise DriverError("injected: libvirtd is not answering")


def destroy_request(spawn: msg.SpawnRequest, request_id: str = "req-destroy") -> msg.DestroyRequest:
    return msg.DestroyRequest(request_id=request_id, instance_uuid=spawn.instance_uuid)


def domain_uuids(report: msg.HostReport | msg.DomainsChanged) -> set[str]:
    return {d.uuid for d in report.domains}


def test_spawn_starts_the_domain_and_reports_spawned_then_its_domain(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    event = manager.spawn(request)

    assert reporter.events == [event]
    # Only the new domain goes with the event (contract 1.12), not every domain of the host:
    # that is the heartbeat's. One message: no DomainsChanged of its own follows.
    changed = event.domains_changed
    assert changed is not None and not reporter.alone and not reporter.reports
    assert event == msg.InstanceEvent(
        request_id=request.request_id,
        instance_uuid=request.instance_uuid,
        host="host-a",
        event=msg.EVENT_SPAWNED,
        power_state=msg.POWER_RUNNING,
        domains_changed=changed,
    )
    assert manager.driver.power_state(request.instance_uuid) == msg.POWER_RUNNING
    assert changed.host == "host-a" and changed.boot_time > 0
    assert changed.domains == [msg.DomainState(request.instance_uuid, msg.POWER_RUNNING)]
    assert msg.InstanceEvent.from_dict(event.to_dict()) == event


def test_an_action_reports_its_domain_with_its_event_in_one_message(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    event = manager.stop(msg.PowerRequest(request_id="req-stop",
                                          instance_uuid=request.instance_uuid, timeout=0))

    assert reporter.events[-1] == event and not reporter.alone
    assert event.domains_changed is not None
    assert event.domains_changed.domains == [
        msg.DomainState(request.instance_uuid, msg.POWER_SHUTDOWN)]


def test_an_event_whose_domain_cannot_be_read_still_goes(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The domains are a courtesy (the heartbeat lists them again); the event is what must go."""
    def unreadable(uuids: object) -> list[msg.DomainState]:
        raise DriverError("injected: libvirtd is not answering")

    monkeypatch.setattr(manager.driver, "domain_states", unreadable)
    event = manager.spawn(spawn_request())

    assert reporter.events == [event]
    assert event.event == msg.EVENT_SPAWNED and event.domains_changed is None


def test_spawning_twice_reports_success_twice_and_keeps_one_domain(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    manager.spawn(request)
    assert [e.event for e in reporter.events] == [msg.EVENT_SPAWNED, msg.EVENT_SPAWNED]
    assert [e.power_state for e in reporter.events] == [msg.POWER_RUNNING, msg.POWER_RUNNING]
    domains = [d for d in manager.driver.list_domains() if d.uuid == request.instance_uuid]
    assert len(domains) == 1


def test_destroy_removes_the_domain_and_reports_destroyed_then_the_domain_gone(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    event = manager.destroy(destroy_request(request))

    assert event.event == msg.EVENT_DESTROYED
    assert event.request_id == "req-destroy"
    assert reporter.events[-1] == event
    assert manager.driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE
    assert reporter.changes[-1].domains == [
        msg.DomainState(request.instance_uuid, msg.POWER_NOSTATE)]


def test_destroying_an_instance_this_host_never_had_reports_destroyed(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.destroy(destroy_request(request))
    manager.destroy(destroy_request(request))
    assert [e.event for e in reporter.events] == [msg.EVENT_DESTROYED, msg.EVENT_DESTROYED]


def test_spawn_arriving_after_destroy_creates_nothing_and_reports_destroyed(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.destroy(destroy_request(request))
    event = manager.spawn(request)

    assert event.event == msg.EVENT_DESTROYED
    assert event.request_id == request.request_id
    assert manager.driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE


def test_tombstone_holds_for_any_spelling_of_the_uuid(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.destroy(
        msg.DestroyRequest(request_id="r", instance_uuid=request.instance_uuid.upper())
    )
    assert manager.spawn(request).event == msg.EVENT_DESTROYED


def test_racing_spawn_and_destroy_never_leave_a_domain_behind(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    requests = [spawn_request() for _ in range(15)]
    actions: list[Callable[[], object]] = []
    for request in requests:
        actions.append(lambda r=request: manager.spawn(r))
        actions.append(lambda r=request: manager.destroy(destroy_request(r)))
    start = threading.Barrier(len(actions))

    def run(action: Callable[[], object]) -> object:
        start.wait(10)
        return action()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        for result in [pool.submit(run, action) for action in actions]:
            result.result(30)  # re-raises whatever went wrong in the thread

    left = {d.uuid for d in manager.driver.list_domains()}
    assert left.isdisjoint(r.instance_uuid for r in requests)


def test_failed_spawn_is_cleaned_up_and_reported_readably(
    driver: LibvirtDriver,
    reporter: RecordingReporter,
    spawn_request: SpawnRequestFactory,
) -> None:
    failing = FailingAfterSpawn("test:///default", instances_dir=driver.instances_dir)
    manager = ComputeManager("host-a", failing, reporter)
    request = spawn_request()

    event = manager.spawn(request)

    assert event.event == msg.EVENT_SPAWN_FAILED
    assert event.message == "injected: the guest never came up"
    assert "Traceback" in event.details
    assert driver.power_state(request.instance_uuid) == msg.POWER_NOSTATE
    assert reporter.changes[-1].domains == [
        msg.DomainState(request.instance_uuid, msg.POWER_NOSTATE)], "the domain follows a failure too"
    failing.close()


def test_failed_cleanup_is_mentioned_in_the_details(
    driver: LibvirtDriver, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    failing = FailingAfterSpawn(
        "test:///default", instances_dir=driver.instances_dir, cleanup_fails=True
    )
    manager = ComputeManager("host-a", failing, reporter)
    event = manager.spawn(spawn_request())
    assert event.event == msg.EVENT_SPAWN_FAILED
    assert "cannot remove the domain" in event.details
    failing.close()


def test_invalid_request_is_reported_as_a_failed_spawn(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    event = manager.spawn(spawn_request(memory_mb=0))
    assert event.event == msg.EVENT_SPAWN_FAILED
    assert "memory_mb" in event.message


def test_destroy_the_hypervisor_refuses_raises_and_still_blocks_a_later_spawn(
    driver: LibvirtDriver, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    refusing = RefusingDestroy("test:///default", instances_dir=driver.instances_dir)
    manager = ComputeManager("host-a", refusing, reporter)
    request = spawn_request()
    with pytest.raises(DriverError):
        manager.destroy(destroy_request(request))
    assert reporter.events == []
    assert manager.spawn(request).event == msg.EVENT_DESTROYED
    refusing.close()


def test_a_report_that_cannot_be_sent_fails_the_operation_so_it_is_retried(
    manager: ComputeManager, reporter: RecordingReporter, spawn_request: SpawnRequestFactory
) -> None:
    reporter.fail_with = ReportError("broker down")
    with pytest.raises(ReportError):
        manager.spawn(spawn_request())


def test_host_report_describes_this_host_and_its_domains(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    report = manager.host_report()
    assert report.host == "host-a"
    assert report.host_ip == "192.0.2.10"
    assert report.hypervisor_type == "TEST"
    assert report.vcpus > 0 and report.memory_mb > 0
    assert msg.DomainState(request.instance_uuid, msg.POWER_RUNNING) in report.domains
    assert 0 < report.boot_time < time.time() and len(report.load_average) == 3
    assert msg.HostReport.from_dict(report.to_dict()) == report


def test_the_hosts_boot_time_and_load_come_from_proc(tmp_path) -> None:
    (tmp_path / "uptime").write_text("3600.50 7000.00\n")
    (tmp_path / "loadavg").write_text("0.10 0.20 0.30 1/123 4567\n")
    assert abs(host_load.boot_time(tmp_path) - (time.time() - 3600.5)) < 5
    assert host_load.load_average(tmp_path) == [0.1, 0.2, 0.3]
    empty = tmp_path / "none"
    assert (host_load.boot_time(empty), host_load.load_average(empty)) == (0.0, [])


def test_the_reports_after_tasks_reuse_the_boot_time_the_heartbeat_read(
    manager: ComputeManager, spawn_request: SpawnRequestFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/proc is read by the heartbeat, not again after every task: the host cannot reboot under
    a running agent."""
    reads: list[float] = []

    def boot_time() -> float:
        reads.append(time.time() - 3600)
        return reads[-1]

    monkeypatch.setattr(host_load, "boot_time", boot_time)
    first = manager.spawn(spawn_request()).domains_changed  # before any heartbeat: read once
    manager.host_report()
    second = manager.spawn(spawn_request()).domains_changed

    assert first is not None and second is not None
    assert len(reads) == 2 and (first.boot_time, second.boot_time) == (reads[0], reads[1])
    manager.spawn(spawn_request())
    assert len(reads) == 2


def test_sending_the_host_report_never_raises(
    manager: ComputeManager, reporter: RecordingReporter
) -> None:
    reporter.fail_with = ReportError("broker down")
    assert manager.send_host_report() is None
    assert manager.send_domains_changed(["c0ffee00-0000-4000-8000-000000000001"]) is None


def test_log_lines_carry_the_request_id_and_never_the_image_token(
    manager: ComputeManager, spawn_request: SpawnRequestFactory, agent_log: list[str]
) -> None:
    request = spawn_request(request_id="req-follow-me")
    manager.spawn(request)
    manager.destroy(destroy_request(request, "req-follow-me-too"))

    manager_lines = [line for line in agent_log if " compute_agent.manager " in line]
    assert any(line.startswith("req-follow-me ") for line in manager_lines)
    assert any(line.startswith("req-follow-me-too ") for line in manager_lines)
    assert all(line.startswith("req-follow-me") for line in manager_lines)
    assert not any("SECRET-IMAGE-TOKEN" in line for line in agent_log)


def test_keyed_locks_are_forgotten_once_released() -> None:
    locks = KeyedLocks()
    with locks.hold("a"), locks.hold("b"):
        assert len(locks) == 2
    assert len(locks) == 0


def test_tombstones_forget_the_oldest_beyond_their_limit() -> None:
    tombstones = Tombstones(limit=2)
    for key in ("a", "b", "c"):
        tombstones.add(key)
    assert "a" not in tombstones
    assert "b" in tombstones and "c" in tombstones


# --- instance actions ---------------------------------------------------------------------


def power(instance_uuid: str, **fields: object) -> msg.PowerRequest:
    return msg.PowerRequest(request_id="req-act", instance_uuid=instance_uuid, **fields)  # type: ignore[arg-type]


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
    changes_before = len(reporter.changes)
    result = getattr(manager, method)(power(running, timeout=5))
    assert result == reporter.events[-1]
    assert (result.event, result.power_state, result.request_id) == (event, state, "req-act")
    assert result.host == "host-a"
    assert len(reporter.changes) == changes_before + 1
    assert reporter.changes[-1].domains == [msg.DomainState(running, state)]


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


def test_a_rebuilt_stopped_guest_stays_stopped_and_a_running_one_runs(
    manager: ComputeManager, spawn_request: SpawnRequestFactory
) -> None:
    request = spawn_request()
    manager.spawn(request)
    event = manager.rebuild(request)
    assert (event.event, event.power_state) == (msg.EVENT_REBUILT, msg.POWER_RUNNING)
    manager.stop(power(request.instance_uuid, timeout=0))
    event = manager.rebuild(request)
    assert (event.event, event.power_state) == (msg.EVENT_REBUILT, msg.POWER_SHUTDOWN)


def test_the_image_cache_sweep_is_a_no_op_on_the_test_driver(manager: ComputeManager) -> None:
    assert manager.sweep_image_cache() == []


# --- declaring host tasks -------------------------------------------------------------------


def test_a_host_task_without_a_request_annotation_is_refused_when_its_class_is_defined() -> None:
    with pytest.raises(TypeError, match="annotate its request"):

        class Manager:
            @host_task("compute.nothing")
            def nothing(self, request):  # type: ignore[no-untyped-def]
                pass


def test_a_host_task_must_take_a_contract_request() -> None:
    with pytest.raises(TypeError, match="annotate its request"):

        class ByUuid:
            @host_task("compute.nothing")
            def nothing(self, instance_uuid: str) -> None:
                pass

    with pytest.raises(TypeError, match="exactly one request"):

        class TwoRequests:
            @host_task("compute.nothing")
            def nothing(self, first: msg.PowerRequest, second: msg.PowerRequest) -> None:
                pass


def test_a_task_served_twice_is_refused() -> None:
    class Twice(ComputeManager):
        @host_task(msg.TASK_START)
        def start_again(self, request: msg.PowerRequest) -> msg.InstanceEvent:
            return self.start(request)

    with pytest.raises(TypeError, match="compute.start twice"):
        host_tasks(Twice)
