"""The migration steps of ComputeManager between hosts of the fake hypervisor
(compute_agent.drivers.fake): live and cold moves, abort and force-complete while the copy runs,
a destination that dies or is cut off mid-copy, and every step delivered twice. Whatever fails,
the guest runs on its source and nothing of it runs on the destination."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from compute_agent import messages as msg
from compute_agent.drivers.fake import FakeCloud, FakeDisk, FakeDriver, FakeHost
from compute_agent.manager import ComputeManager
from compute_agent.reporter import ReportError

from .fakes import RecordingReporter

A, B = "host-a", "host-b"


@dataclass
class Host:
    name: str
    manager: ComputeManager
    reporter: RecordingReporter
    driver: FakeDriver

    @property
    def fake(self) -> FakeHost:
        return self.driver.cloud.hosts[self.name]

    def events(self, *names: str) -> list[msg.InstanceEvent]:
        return [e for e in self.reporter.events if not names or e.event in names]


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def hosts(cloud: FakeCloud) -> dict[str, Host]:
    made = {}
    for name in (A, B):
        reporter = RecordingReporter()
        driver = cloud.driver(name)
        made[name] = Host(name, ComputeManager(name, driver, reporter, migration_uri=cloud.uri(name)),
                          reporter, driver)
    return made


@pytest.fixture
def guest(hosts: dict[str, Host]) -> msg.SpawnRequest:
    """An instance running on host A, with something written on its disk."""
    request = msg.SpawnRequest(
        request_id="req-boot", instance_uuid=str(uuid.uuid4()), name="web", hostname="web",
        vcpus=1, memory_mb=128, root_gb=1, image=msg.ImageRef(id="img-1"),
    )
    assert hosts[A].manager.spawn(request).event == msg.EVENT_SPAWNED
    hosts[A].fake.disks[request.instance_uuid].data = "written by the guest"
    return request


def migration(guest: msg.SpawnRequest, *, live: bool = True, migration_id: str = "17",
              **spawn_changes: object) -> msg.MigrationRequest:
    spawn = msg.SpawnRequest.from_dict(guest.to_dict() | spawn_changes)
    return msg.MigrationRequest(
        request_id="req-move", instance_uuid=guest.instance_uuid, migration_id=migration_id,
        source_host=A, dest_host=B, dest_uri=FakeCloud.uri(B), live=live, spawn=spawn,
        stop_timeout=5,
    )


def live_move(hosts: dict[str, Host], request: msg.MigrationRequest) -> msg.InstanceEvent:
    assert hosts[B].manager.prepare_migration(request).event == msg.EVENT_MIGRATION_PREPARED
    return hosts[A].manager.live_migrate(request)


def assert_failed(event: msg.InstanceEvent, *words: str) -> None:
    assert (event.event, event.action, event.migration_id) == (
        msg.EVENT_ACTION_FAILED, msg.ACTION_MIGRATION, "17"), event
    for word in words:
        assert word in event.message


def assert_still_on_the_source(hosts: dict[str, Host], guest: msg.SpawnRequest,
                               state: str = msg.POWER_RUNNING) -> None:
    uuid_ = guest.instance_uuid
    assert hosts[A].driver.power_state(uuid_) == state
    assert hosts[A].fake.disks[uuid_].data == "written by the guest"
    assert uuid_ not in hosts[B].fake.domains


# --- prepare --------------------------------------------------------------------------------


def test_prepare_makes_the_destination_ready_and_names_the_migration(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    event = hosts[B].manager.prepare_migration(migration(guest))
    assert (event.event, event.migration_id, event.host) == (
        msg.EVENT_MIGRATION_PREPARED, "17", B)
    fake = hosts[B].fake
    assert guest.instance_uuid in fake.prepared and "img-1" in fake.images
    assert fake.disks[guest.instance_uuid] == FakeDisk(1)  # a live copy lands on an empty disk
    assert hosts[B].reporter.changes[-1].domains[0].uuid == guest.instance_uuid, \
        "the domain follows"


def test_prepare_lifts_the_tombstone_of_an_instance_coming_back(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    hosts[B].manager.destroy(msg.DestroyRequest("req-gone", guest.instance_uuid))
    event = hosts[B].manager.prepare_migration(migration(guest))
    assert event.event == msg.EVENT_MIGRATION_PREPARED
    assert guest.instance_uuid not in hosts[B].manager.tombstones


def test_prepare_sent_to_the_wrong_host_fails_and_keeps_the_tombstone(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    hosts[A].manager.destroy(msg.DestroyRequest("req-gone", guest.instance_uuid))
    assert_failed(hosts[A].manager.prepare_migration(migration(guest)))
    assert guest.instance_uuid in hosts[A].manager.tombstones


def test_prepare_without_the_instance_description_fails_readably(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    request.spawn = None
    assert_failed(hosts[B].manager.prepare_migration(request), "does not describe the instance")


def test_prepare_leaves_a_guest_that_is_already_here_alone(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    assert live_move(hosts, request).event == msg.EVENT_LIVE_MIGRATED
    event = hosts[B].manager.prepare_migration(request)  # redelivered late
    assert (event.event, event.power_state) == (msg.EVENT_MIGRATION_PREPARED, msg.POWER_RUNNING)
    assert hosts[B].fake.disks[guest.instance_uuid].data == "written by the guest"


# --- live -----------------------------------------------------------------------------------


def test_a_live_migration_reports_progress_then_the_guest_running_on_the_destination(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    event = live_move(hosts, migration(guest))
    assert (event.event, event.power_state, event.migration_id, event.host) == (
        msg.EVENT_LIVE_MIGRATED, msg.POWER_RUNNING, "17", A)
    progress = hosts[A].events(msg.EVENT_MIGRATION_PROGRESS)
    assert len(progress) == 3 and all(p.migration_id == "17" for p in progress)
    assert set(progress[0].progress) == {
        "memory_total", "memory_processed", "memory_remaining",
        "disk_total", "disk_processed", "disk_remaining"}
    assert progress[-1].progress["memory_remaining"] == 0
    assert hosts[A].events()[-1] == event  # the outcome comes after every figure
    assert not hosts[A].fake.holds(guest.instance_uuid)
    assert hosts[B].driver.power_state(guest.instance_uuid) == msg.POWER_RUNNING
    assert hosts[B].fake.disks[guest.instance_uuid].data == "written by the guest"
    assert hosts[A].reporter.changes[-1].domains == [
        msg.DomainState(guest.instance_uuid, msg.POWER_NOSTATE)]


def test_a_paused_guest_arrives_paused(hosts: dict[str, Host], guest: msg.SpawnRequest) -> None:
    hosts[A].driver.pause(guest.instance_uuid)
    event = live_move(hosts, migration(guest))
    assert (event.event, event.power_state) == (msg.EVENT_LIVE_MIGRATED, msg.POWER_PAUSED)


def test_a_redelivered_live_migration_finds_the_guest_moved_and_succeeds_again(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    live_move(hosts, request)
    again = hosts[A].manager.live_migrate(request)
    assert (again.event, again.power_state) == (msg.EVENT_LIVE_MIGRATED, msg.POWER_RUNNING)
    assert hosts[B].driver.power_state(guest.instance_uuid) == msg.POWER_RUNNING


def test_a_stopped_guest_cannot_be_live_migrated(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    hosts[A].driver.stop(guest.instance_uuid, 0)
    assert_failed(live_move(hosts, migration(guest)), "runs neither here nor on")
    assert_still_on_the_source(hosts, guest, msg.POWER_SHUTDOWN)


def test_without_a_destination_uri_nothing_moves(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    request.dest_uri = ""
    assert_failed(live_move(hosts, request), "host-b", "no migration URI")
    assert_still_on_the_source(hosts, guest)


def test_a_destination_that_dies_mid_copy_leaves_the_guest_on_the_source(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    cloud.during_copy = lambda _uuid, step: cloud.kill(B) if step == 1 else None
    assert_failed(live_move(hosts, migration(guest)), "Lost connection")
    cloud.revive(B)
    assert_still_on_the_source(hosts, guest)
    # The control plane's rollback: a destroy on the destination leaves nothing there.
    hosts[B].manager.destroy(msg.DestroyRequest("req-rollback", guest.instance_uuid))
    assert not hosts[B].fake.holds(guest.instance_uuid)


def test_a_destination_cut_off_before_the_copy_leaves_everything_as_it_was(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    hosts[B].manager.prepare_migration(request)
    cloud.cut(B)
    assert_failed(hosts[A].manager.live_migrate(request), "cannot reach fake://host-b")
    assert_still_on_the_source(hosts, guest)


def test_a_link_cut_mid_copy_fails_the_migration(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    cloud.during_copy = lambda _uuid, step: cloud.cut(B) if step == 2 else None
    assert_failed(live_move(hosts, migration(guest)), "Lost connection")
    assert_still_on_the_source(hosts, guest)


def in_another_thread(call: Callable[[], object]) -> object:
    """Run `call` in a second thread, as a second worker thread of the agent would, and wait
    for it; it must not wait for the migration's lock."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the call waited for the migration to end"
    return result[0]


def test_an_abort_while_the_copy_runs_cancels_it_and_the_guest_stays(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    aborted: list[object] = []
    cloud.during_copy = lambda _uuid, step: aborted.append(
        in_another_thread(lambda: hosts[A].manager.abort_migration(request))
    ) if step == 1 else None
    event = live_move(hosts, request)
    assert aborted == [True]
    assert_failed(event, "cancelled")
    assert_still_on_the_source(hosts, guest)
    assert len(hosts[A].events(msg.EVENT_MIGRATION_PROGRESS)) == 1
    assert hosts[A].events()[-1] == event, "the abort reports nothing of its own"


def test_an_abort_that_arrives_before_the_copy_starts_cancels_it_at_once(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    hosts[B].manager.prepare_migration(request)
    assert hosts[A].manager.abort_migration(request) is False  # nothing to abort yet
    event = hosts[A].manager.live_migrate(request)
    assert_failed(event, "cancelled before it started")
    assert_still_on_the_source(hosts, guest)
    assert hosts[A].events(msg.EVENT_MIGRATION_PROGRESS) == []


def test_an_abort_after_the_move_changes_nothing(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    request = migration(guest)
    live_move(hosts, request)
    assert hosts[A].manager.abort_migration(request) is False
    again = hosts[A].manager.live_migrate(request)  # redelivered: still a success
    assert again.event == msg.EVENT_LIVE_MIGRATED


def test_force_complete_pauses_a_copy_that_does_not_converge_and_it_runs_on_afterwards(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    cloud.converges = False
    request = migration(guest)
    states: list[str] = []

    def force(_uuid: str, step: int) -> None:
        if step == 5:
            assert in_another_thread(lambda: hosts[A].manager.force_complete_migration(request))
            states.append(hosts[A].driver.power_state(guest.instance_uuid))

    cloud.during_copy = force
    event = live_move(hosts, request)
    assert states == [msg.POWER_PAUSED]  # paused on the source while the copy ends
    assert (event.event, event.power_state) == (msg.EVENT_LIVE_MIGRATED, msg.POWER_RUNNING)
    assert hosts[B].driver.power_state(guest.instance_uuid) == msg.POWER_RUNNING


def test_a_force_complete_that_arrives_first_is_applied_when_the_copy_starts(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    cloud.converges = False
    request = migration(guest)
    assert hosts[A].manager.force_complete_migration(request) is False
    assert live_move(hosts, request).event == msg.EVENT_LIVE_MIGRATED


def test_a_copy_that_never_converges_is_cancelled_at_its_deadline_and_resumed(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    cloud.converges, cloud.step_seconds = False, 0.01
    hosts[A].driver.migration_timeout = 0.05
    assert_failed(live_move(hosts, migration(guest)), "did not complete within")
    assert_still_on_the_source(hosts, guest)


def test_a_lost_progress_report_does_not_stop_the_copy(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    reporter = hosts[A].reporter
    real = reporter.instance_event

    def flaky(event: msg.InstanceEvent) -> None:
        if event.event == msg.EVENT_MIGRATION_PROGRESS:
            raise ReportError("broker away")
        real(event)

    reporter.instance_event = flaky  # type: ignore[method-assign]
    assert live_move(hosts, migration(guest)).event == msg.EVENT_LIVE_MIGRATED


def test_a_migration_of_an_instance_deleted_here_fails_without_touching_it(
    hosts: dict[str, Host], guest: msg.SpawnRequest
) -> None:
    hosts[A].manager.tombstones.add(guest.instance_uuid)
    assert_failed(live_move(hosts, migration(guest)), "deleted from this host")
    assert hosts[A].driver.power_state(guest.instance_uuid) == msg.POWER_RUNNING


# --- cold -----------------------------------------------------------------------------------


@pytest.fixture
def cold(hosts: dict[str, Host], guest: msg.SpawnRequest) -> Iterator[msg.MigrationRequest]:
    """A resize to another host: prepared there, its disk sent."""
    request = migration(guest, live=False, vcpus=2, memory_mb=256, root_gb=3)
    assert hosts[B].manager.prepare_migration(request).event == msg.EVENT_MIGRATION_PREPARED
    assert guest.instance_uuid not in hosts[B].fake.disks  # the disk comes from the source
    yield request


def test_sending_the_disk_shuts_the_guest_down_and_keeps_it_on_the_source(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    event = hosts[A].manager.migrate_disk(cold)
    assert (event.event, event.power_state, event.migration_id) == (
        msg.EVENT_DISK_MIGRATED, msg.POWER_SHUTDOWN, "17")
    assert hosts[A].fake.domains[guest.instance_uuid].power_state == msg.POWER_SHUTDOWN
    assert hosts[A].fake.disks[guest.instance_uuid].data == "written by the guest"
    assert hosts[B].fake.incoming[guest.instance_uuid].data == "written by the guest"
    assert hosts[A].manager.migrate_disk(cold).event == msg.EVENT_DISK_MIGRATED  # redelivered


def test_finishing_runs_the_guest_on_the_destination_with_its_new_sizes(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    hosts[A].manager.migrate_disk(cold)
    event = hosts[B].manager.finish_migration(cold)
    assert (event.event, event.power_state, event.host) == (
        msg.EVENT_MIGRATION_FINISHED, msg.POWER_RUNNING, B)
    domain = hosts[B].fake.domains[guest.instance_uuid]
    assert (domain.vcpus, domain.memory_mb) == (2, 256)
    assert hosts[B].fake.disks[guest.instance_uuid] == FakeDisk(3, "written by the guest")
    assert hosts[B].manager.finish_migration(cold).event == msg.EVENT_MIGRATION_FINISHED
    # Confirm: the source's copy goes.
    hosts[A].manager.destroy(msg.DestroyRequest("req-confirm", guest.instance_uuid))
    assert not hosts[A].fake.holds(guest.instance_uuid)


def test_a_guest_that_was_stopped_is_finished_stopped(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    hosts[A].manager.migrate_disk(cold)
    cold.power_on = False
    event = hosts[B].manager.finish_migration(cold)
    assert (event.event, event.power_state) == (msg.EVENT_MIGRATION_FINISHED, msg.POWER_SHUTDOWN)
    assert hosts[B].fake.domains[guest.instance_uuid].power_state == msg.POWER_SHUTDOWN
    assert hosts[B].fake.disks[guest.instance_uuid].data == "written by the guest"


def test_a_revert_starts_the_guest_the_source_kept(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    hosts[A].manager.migrate_disk(cold)
    hosts[B].manager.finish_migration(cold)
    hosts[B].manager.destroy(msg.DestroyRequest("req-revert", guest.instance_uuid))
    event = hosts[A].manager.revert_migration(cold)
    assert (event.event, event.power_state, event.migration_id) == (
        msg.EVENT_MIGRATION_REVERTED, msg.POWER_RUNNING, "17")
    assert_still_on_the_source(hosts, guest)
    assert not hosts[B].fake.holds(guest.instance_uuid)
    assert hosts[A].manager.revert_migration(cold).event == msg.EVENT_MIGRATION_REVERTED


def test_finishing_without_the_disk_fails_and_defines_nothing(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    assert_failed(hosts[B].manager.finish_migration(cold), "never arrived")
    assert guest.instance_uuid not in hosts[B].fake.domains


def test_finishing_after_the_destination_was_destroyed_does_nothing(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    hosts[A].manager.migrate_disk(cold)
    hosts[B].manager.destroy(msg.DestroyRequest("req-revert", guest.instance_uuid))
    assert_failed(hosts[B].manager.finish_migration(cold), "deleted from this host")
    assert not hosts[B].fake.holds(guest.instance_uuid)


def test_an_unreachable_destination_leaves_the_guest_running(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest,
    cold: msg.MigrationRequest,
) -> None:
    cloud.kill(B)
    assert_failed(hosts[A].manager.migrate_disk(cold), "Connection refused")
    assert_still_on_the_source(hosts, guest)


def test_a_destination_that_dies_while_the_disk_travels_fails_the_step(
    cloud: FakeCloud, hosts: dict[str, Host], guest: msg.SpawnRequest,
    cold: msg.MigrationRequest,
) -> None:
    cloud.during_copy = lambda _uuid, _step: cloud.kill(B)
    assert_failed(hosts[A].manager.migrate_disk(cold), "Lost connection")
    cloud.revive(B)
    assert guest.instance_uuid not in hosts[B].fake.incoming
    # The control plane starts the guest the source shut down again.
    assert hosts[A].manager.revert_migration(cold).power_state == msg.POWER_RUNNING
    assert_still_on_the_source(hosts, guest)


def test_steps_sent_to_the_wrong_host_are_refused(
    hosts: dict[str, Host], guest: msg.SpawnRequest, cold: msg.MigrationRequest
) -> None:
    assert_failed(hosts[A].manager.prepare_migration(cold), "this host is host-a",
                  "destination is host-b")
    assert_failed(hosts[B].manager.migrate_disk(cold), "source is host-a")
    assert_failed(hosts[A].manager.finish_migration(cold), "destination is host-b")
    assert_failed(hosts[B].manager.revert_migration(cold), "source is host-a")
    assert_still_on_the_source(hosts, guest)


def test_the_host_report_says_how_to_reach_the_host_for_a_migration(
    hosts: dict[str, Host],
) -> None:
    assert hosts[A].manager.host_report().migration_uri == "fake://host-a"
