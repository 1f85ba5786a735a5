"""Instance HA on a live host: a running guest its host reports dead is started again there, within
a budget, and each restart is told to the user as a fault and an action."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute import states
from cloud.compute.models import Instance, InstanceAction, Migration
from cloud.conductor import guest_recovery
from cloud.conductor.instance_events import apply_instance_event
from cloud.conductor.power_sync import sync_power_states
from compute_agent import messages as msg
from tests.factories import make_instance, make_node

HOST = "h1"
LONG_AGO = timedelta(minutes=5)


@pytest.fixture
def host(db):
    return make_node(HOST)


@pytest.fixture
def settings_ha(settings):
    settings.KUMO_GUEST_RESTART_BUDGET = 3
    settings.KUMO_GUEST_RESTART_WINDOW = 600
    settings.KUMO_POWER_SYNC_GRACE = 20
    return settings


def running(node, **fields) -> Instance:
    values = {"vm_state": states.ACTIVE, "power_state": msg.POWER_RUNNING, "host": HOST,
              "task_state": None, "launched_at": timezone.now() - LONG_AGO}
    values.update(fields)
    instance = make_instance(**values)
    settle(instance)
    return instance


def settle(instance: Instance) -> None:
    """As if the row last changed long ago (past power sync's grace period)."""
    Instance.objects.filter(pk=instance.pk).update(updated_at=timezone.now() - LONG_AGO)


def report(*domains: tuple[Instance, str], boot_time: float | None = None) -> msg.HostReport:
    # A host that booted an hour ago, unless a test says otherwise.
    booted = time.time() - 3600 if boot_time is None else boot_time
    return msg.HostReport(
        host=HOST, hypervisor_type="QEMU", hypervisor_version=1, hypervisor_hostname=HOST,
        host_ip="127.0.0.1", vcpus=1, memory_mb=1, local_gb=1, boot_time=booted,
        domains=[msg.DomainState(uuid=str(i.uuid), power_state=p) for i, p in domains])


def reboots(sent, instance: Instance) -> list[dict]:
    return [s.payload for s in sent if s.name == msg.TASK_REBOOT
            and s.payload["instance_uuid"] == str(instance.uuid)]


def host_answers(instance: Instance, event: str, **fields: str) -> None:
    """The host's answer to the latest restart, applied as the conductor applies it; then the
    row is settled again, as if the guest had run a while."""
    apply_instance_event(msg.InstanceEvent(
        request_id="req-host", instance_uuid=str(instance.uuid), host=HOST, event=event,
        **fields))
    settle(instance)


def refreshed(instance: Instance) -> Instance:
    instance.refresh_from_db()
    return instance


def test_a_guest_whose_qemu_died_is_hard_rebooted_on_its_host_with_a_fault(
        host, settings_ha, sent):
    vm = running(host)

    assert sync_power_states(report((vm, msg.POWER_CRASHED))) == 1

    vm = refreshed(vm)
    assert (vm.vm_state, vm.task_state, vm.host) == (states.ACTIVE, states.REBOOTING_HARD, HOST)
    assert vm.status == "HARD_REBOOT"
    [request] = reboots(sent, vm)
    assert request["reboot_type"] == msg.REBOOT_HARD
    assert request["spawn"]["instance_uuid"] == str(vm.uuid)  # the host can re-create it
    assert [s.queue for s in sent if s.name == msg.TASK_REBOOT] == [msg.compute_queue(HOST)]
    fault = vm.faults.first()
    assert fault.message == ("The guest's qemu process died; restarting it on h1 "
                             "(attempt 1 of 3).")
    action = InstanceAction.objects.filter(instance=vm).first()
    assert action.action == "reboot" and action.request_id == request["request_id"]
    assert action.request_id.startswith("req-recover-crashed-")
    assert [e.event for e in action.events.all()] == [guest_recovery.EVENT_RECOVERY]

    host_answers(vm, msg.EVENT_REBOOTED, power_state=msg.POWER_RUNNING)
    vm = refreshed(vm)
    assert (vm.status, vm.power_state) == ("ACTIVE", msg.POWER_RUNNING)


def test_a_guest_that_keeps_crashing_is_left_shut_off_once_its_budget_is_spent(
        host, settings_ha, sent):
    vm = running(host)
    for attempt in (1, 2, 3):
        sync_power_states(report((vm, msg.POWER_CRASHED)))
        assert f"(attempt {attempt} of 3)" in refreshed(vm).faults.first().message
        host_answers(vm, msg.EVENT_REBOOTED, power_state=msg.POWER_RUNNING)

    sync_power_states(report((vm, msg.POWER_CRASHED)))

    vm = refreshed(vm)
    assert len(reboots(sent, vm)) == 3
    assert (vm.status, vm.task_state, vm.power_state) == ("SHUTOFF", None, msg.POWER_CRASHED)
    assert vm.faults.first().message == ("The guest's qemu process died again; it is left shut "
                                         "off after 3 restarts within 600 s.")
    # Stopped now: later reports start nothing.
    settle(vm)
    sync_power_states(report((vm, msg.POWER_CRASHED)))
    assert len(reboots(sent, vm)) == 3


def test_restarts_older_than_the_window_are_not_counted(host, settings_ha, sent):
    vm = running(host)
    for _ in range(3):
        sync_power_states(report((vm, msg.POWER_CRASHED)))
        host_answers(vm, msg.EVENT_REBOOTED, power_state=msg.POWER_RUNNING)
    InstanceAction.objects.filter(instance=vm).update(
        start_time=timezone.now() - timedelta(seconds=601))

    sync_power_states(report((vm, msg.POWER_CRASHED)))

    vm = refreshed(vm)
    assert vm.task_state == states.REBOOTING_HARD
    assert "(attempt 1 of 3)" in vm.faults.first().message


def test_a_domain_the_host_lost_is_recreated_and_stays_active_however_often(
        host, settings_ha, sent):
    # libvirt's test driver forgets its domains whenever its agent restarts: each restart of the
    # stack loses them, and each time they come back. Such a loss is no fault of the guest's.
    vm = running(host)
    for _ in range(5):
        sync_power_states(report())
        vm = refreshed(vm)
        assert vm.task_state == states.REBOOTING_HARD
        assert vm.faults.first().message == ("The instance's domain is gone from its host; "
                                             "re-creating it on h1 (attempt 1 of 3).")
        host_answers(vm, msg.EVENT_REBOOTED, power_state=msg.POWER_RUNNING)
        assert refreshed(vm).status == "ACTIVE"
    assert len(reboots(sent, vm)) == 5
    assert all(r["spawn"]["name"] == vm.display_name for r in reboots(sent, vm))


def test_a_lost_domain_that_cannot_be_recreated_ends_in_error_after_its_budget(
        host, settings_ha, sent):
    vm = running(host)
    for _ in range(3):
        sync_power_states(report())
        host_answers(vm, msg.EVENT_ACTION_FAILED, action=msg.ACTION_REBOOT,
                     message="image gone", power_state=msg.POWER_NOSTATE)
        assert refreshed(vm).status == "ACTIVE"

    sync_power_states(report())

    vm = refreshed(vm)
    assert len(reboots(sent, vm)) == 3
    assert (vm.status, vm.task_state) == ("ERROR", None)
    fault = vm.faults.first()
    assert fault.message == "The instance's domain is gone from its host."
    assert "gave up: 3 restarts within 600 s" in fault.details


def test_a_guest_that_shut_itself_down_becomes_shutoff_and_is_not_restarted(
        host, settings_ha, sent):
    vm = running(host)
    sync_power_states(report((vm, msg.POWER_SHUTDOWN)))
    vm = refreshed(vm)
    assert (vm.status, vm.power_state) == ("SHUTOFF", msg.POWER_SHUTDOWN)
    assert reboots(sent, vm) == []


def test_a_guest_whose_host_rebooted_under_it_is_started_again(host, settings_ha, sent):
    vm = running(host)
    sync_power_states(report((vm, msg.POWER_SHUTDOWN), boot_time=time.time() - 30))
    vm = refreshed(vm)
    assert vm.task_state == states.REBOOTING_HARD
    assert len(reboots(sent, vm)) == 1
    assert vm.faults.first().message.startswith("Host h1 rebooted under the running guest")


def test_a_stopped_server_stays_stopped_when_its_host_rebooted(host, settings_ha, sent):
    vm = running(host, vm_state=states.STOPPED, power_state=msg.POWER_SHUTDOWN)
    assert sync_power_states(report((vm, msg.POWER_SHUTDOWN), boot_time=time.time() - 30)) == 0
    vm = refreshed(vm)
    assert (vm.status, vm.task_state) == ("SHUTOFF", None)
    assert reboots(sent, vm) == []


def test_busy_moving_or_freshly_changed_instances_are_left_alone(host, settings_ha, sent):
    busy = running(host, task_state=states.POWERING_OFF)
    moving = running(host)
    Migration.objects.create(instance=moving, source_compute=HOST, source_node=HOST,
                             dest_compute="h2",
                             status=states.MIGRATION_RUNNING, migration_type="live-migration")
    fresh = running(host)
    Instance.objects.filter(pk=fresh.pk).update(updated_at=timezone.now())

    sync_power_states(report((busy, msg.POWER_CRASHED), (moving, msg.POWER_CRASHED),
                             (fresh, msg.POWER_CRASHED)))

    assert [s for s in sent if s.name == msg.TASK_REBOOT] == []
    for vm in (busy, moving, fresh):
        assert refreshed(vm).vm_state == states.ACTIVE and not vm.faults.exists()


def test_an_instance_of_another_host_is_left_alone(host, settings_ha, sent):
    elsewhere = running(host, host="h2")
    sync_power_states(report((elsewhere, msg.POWER_CRASHED)))
    assert guest_recovery.restart(elsewhere, guest_recovery.CRASHED, report()) == \
        guest_recovery.LEFT_ALONE
    assert reboots(sent, elsewhere) == []
    assert refreshed(elsewhere).task_state is None


def test_a_redelivered_or_concurrent_report_restarts_the_guest_once(host, settings_ha, sent):
    vm = running(host)
    seen = Instance.objects.get(pk=vm.pk)  # what two conductor threads read at once
    crashed = report((vm, msg.POWER_CRASHED))

    assert guest_recovery.restart(seen, guest_recovery.CRASHED, crashed) == \
        guest_recovery.RESTARTING
    assert guest_recovery.restart(seen, guest_recovery.CRASHED, crashed) == \
        guest_recovery.LEFT_ALONE
    sync_power_states(crashed)

    assert len(reboots(sent, vm)) == 1
    assert refreshed(vm).faults.count() == 1


def test_a_server_stopped_meanwhile_is_not_restarted(host, settings_ha, sent):
    vm = running(host)
    seen = Instance.objects.get(pk=vm.pk)
    Instance.objects.filter(pk=vm.pk).update(vm_state=states.STOPPED,
                                             power_state=msg.POWER_SHUTDOWN)
    assert guest_recovery.restart(seen, guest_recovery.CRASHED, report()) == \
        guest_recovery.LEFT_ALONE
    assert reboots(sent, vm) == []
