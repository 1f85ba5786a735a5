"""The reconciler (cloud/conductor/reconciler.py): whatever message was lost, an instance past its
task state's deadline is finished as its host's report proves, asked for again, or failed with a
fault, and the claims follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from cloud.beat import TASK_RECONCILE
from cloud.compute import action_records, states
from cloud.compute.models import Allocation, ComputeNode, Instance, InstanceFault
from cloud.conductor.reconciler import reconcile
from compute_agent import messages as msg
from tests.factories import claim, host_state, host_up, make_instance, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _deadlines(settings):
    settings.KUMO_TASK_DEADLINES = {"scheduling": 30, "spawning": 60, "deleting": 60,
                                    "default": 120}
    settings.KUMO_MAX_REDRIVES = 2


def stuck(instance: Instance, seconds: float = 600) -> Instance:
    Instance.objects.filter(pk=instance.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds))
    instance.refresh_from_db()
    return instance


def reports(node: ComputeNode, *domains: tuple[Instance, str]) -> None:
    """The host's latest heartbeat listed these domains, just now."""
    ComputeNode.objects.filter(pk=node.pk).update(
        domains=[{"uuid": str(i.uuid), "power_state": power} for i, power in domains],
        updated_at=timezone.now())


def placed(node: ComputeNode, *, task_state: str | None = states.SPAWNING,
           vm_state: str = states.BUILDING, **fields) -> Instance:
    """An instance claimed on the node, then in the given states."""
    instance = make_instance(**fields)
    assert claim(instance, host_state(node))
    Instance.objects.filter(pk=instance.pk).update(task_state=task_state, vm_state=vm_state)
    instance.refresh_from_db()
    return instance


def redrives(instance: Instance) -> int:
    return action_records.count_events(str(instance.uuid), action_records.EVENT_REDRIVE)


# --- scheduling


def test_an_instance_past_the_scheduling_deadline_is_scheduled_again(sent):
    waiting = stuck(make_instance())
    fresh = make_instance("fresh")

    assert reconcile() == {"schedules resent": 1}

    assert [(s.name, s.args) for s in sent] == [
        (msg.TASK_SCHEDULE_INSTANCE, [str(waiting.uuid), sent[0].args[1], True])]
    assert redrives(waiting) == 1 and redrives(fresh) == 0
    assert reconcile() == {}  # the deadline starts again from the re-drive


def test_the_last_try_tells_the_scheduler_to_stop_waiting_for_silent_hosts(sent):
    waiting = stuck(make_instance())
    reconcile()
    stuck(waiting)
    reconcile()
    assert [s.args[2] for s in sent] == [True, False]


# --- spawning


def test_a_build_whose_report_was_lost_is_made_active_from_the_hosts_report(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node))
    reports(node, (instance, msg.POWER_RUNNING))

    assert reconcile() == {"builds found running": 1}

    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.power_state) == (
        states.ACTIVE, None, msg.POWER_RUNNING)
    assert Allocation.objects.filter(instance=instance).exists() and sent == []


def test_a_build_the_host_never_started_is_asked_for_again_then_rescheduled(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node))
    reports(node)

    assert reconcile() == {"spawns resent": 1}
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_SPAWN, "compute.compute-1")]
    stuck(instance)
    reconcile()
    stuck(instance)
    assert reconcile() == {"builds given up": 1}

    instance.refresh_from_db()
    assert (instance.task_state, instance.host, instance.tried_hosts) == (
        states.SCHEDULING, None, ["compute-1"])
    assert not Allocation.objects.filter(instance=instance).exists()
    assert sent[-1].name == msg.TASK_SCHEDULE_INSTANCE


def test_a_build_on_a_host_that_died_is_rescheduled_at_once(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node))
    host_up("compute-1", up=False)

    assert reconcile() == {"builds given up": 1}
    instance.refresh_from_db()
    assert instance.task_state == states.SCHEDULING and instance.host is None


# --- deleting


def test_a_delete_whose_host_is_down_completes_here(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, task_state=states.DELETING))
    host_up("compute-1", up=False)

    assert reconcile() == {"deletes completed": 1}

    instance.refresh_from_db()
    assert instance.deleted and instance.vm_state == states.DELETED
    assert not Allocation.objects.filter(instance=instance).exists()
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used) == (0, 0)


def test_a_delete_whose_destroyed_report_was_lost_completes_when_the_host_shows_it_gone(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, task_state=states.DELETING))
    reports(node)  # after the delete began, without the domain

    assert reconcile() == {"deletes completed": 1}
    instance.refresh_from_db()
    assert instance.deleted and sent == []


def test_a_delete_the_host_still_runs_is_asked_for_again(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, task_state=states.DELETING))
    reports(node, (instance, msg.POWER_RUNNING))

    assert reconcile() == {"destroys resent": 1}
    assert [(s.name, s.payload["instance_uuid"]) for s in sent] == [
        (msg.TASK_DESTROY, str(instance.uuid))]
    instance.refresh_from_db()
    assert not instance.deleted and instance.task_state == states.DELETING


# --- operations


def test_a_stop_the_host_carried_out_is_finished_from_its_report(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, vm_state=states.ACTIVE, task_state=states.POWERING_OFF))
    reports(node, (instance, msg.POWER_SHUTDOWN))

    assert reconcile() == {"operations found done": 1}
    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state, instance.power_state) == (
        states.STOPPED, None, msg.POWER_SHUTDOWN)


def test_a_stop_the_host_did_not_carry_out_fails_with_a_fault_and_the_server_stays(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, vm_state=states.ACTIVE, task_state=states.POWERING_OFF))
    reports(node, (instance, msg.POWER_RUNNING))

    assert reconcile() == {"operations failed": 1}
    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state) == (states.ACTIVE, None)
    assert "did not finish it in 120 s" in InstanceFault.objects.get(instance=instance).message


def test_an_operation_on_a_host_that_went_down_fails_saying_so(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, vm_state=states.ACTIVE, task_state=states.PAUSING))
    host_up("compute-1", up=False)

    reconcile()
    instance.refresh_from_db()
    assert instance.task_state is None
    assert "compute-1 is not responding" in InstanceFault.objects.get(instance=instance).message


def test_nothing_before_its_deadline_is_touched(sent):
    node = make_node("compute-1")
    instance = stuck(placed(node, vm_state=states.ACTIVE, task_state=states.POWERING_OFF), 60)
    assert reconcile() == {} and sent == []
    instance.refresh_from_db()
    assert instance.task_state == states.POWERING_OFF


# --- claims


def test_a_claim_whose_instance_is_deleted_is_released_and_counters_follow_the_claims(sent):
    node = make_node("compute-1", vcpus=8, memory_mb=8192)
    gone = placed(node, vcpus=2, memory_mb=2048, task_state=None, vm_state=states.ACTIVE)
    kept = placed(node, vcpus=1, memory_mb=1024, task_state=None, vm_state=states.ACTIVE)
    Instance.objects.filter(pk=gone.pk).update(deleted=True)
    ComputeNode.objects.filter(pk=node.pk).update(local_gb_used=999)  # drifted

    done = reconcile()

    assert done == {"claims released": 1, "node counters corrected": 1}
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (1, 1024, 10)
    assert list(Allocation.objects.values_list("instance_id", flat=True)) == [kept.uuid]


def test_counters_are_checked_in_one_query_whatever_the_hosts_and_each_drift_is_found(sent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cloud.compute.claims import correct_usage

    nodes = [make_node(f"compute-{i}", vcpus=8, memory_mb=8192) for i in range(6)]
    for node in nodes[:3]:
        placed(node, vcpus=1, memory_mb=512, task_state=None, vm_state=states.ACTIVE)
    with CaptureQueriesContext(connection) as queries:
        assert correct_usage() == 0
    assert len(queries) == 1  # an idle pass: no query per node
    # Drift in each counter, on nodes with claims and without.
    ComputeNode.objects.filter(pk=nodes[0].pk).update(vcpus_used=5)
    ComputeNode.objects.filter(pk=nodes[1].pk).update(memory_mb_used=1)
    ComputeNode.objects.filter(pk=nodes[4].pk).update(local_gb_used=3)
    assert correct_usage() == 3
    assert correct_usage() == 0
    got = {n.host: (n.vcpus_used, n.memory_mb_used, n.local_gb_used)
           for n in ComputeNode.objects.filter(pk__in=[n.pk for n in nodes])}
    assert got["compute-0"] == got["compute-1"] == (1, 512, 10)
    assert got["compute-4"] == (0, 0, 0)


def test_beat_runs_the_reconciler_on_the_conductor():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == TASK_RECONCILE]
    assert [e["options"]["queue"] for e in entries] == [msg.CONDUCTOR_QUEUE]


def test_a_build_no_scheduler_answers_ends_in_error_after_the_last_try(sent):
    waiting = stuck(make_instance())
    reconcile()
    stuck(waiting)
    reconcile()  # the last try
    stuck(waiting)
    assert reconcile() == {"builds given up": 1}
    waiting.refresh_from_db()
    assert (waiting.vm_state, waiting.task_state) == (states.ERROR, None)
    assert "No scheduler answered" in InstanceFault.objects.get(instance=waiting).message
    assert len(sent) == 2  # nothing more was sent
    stuck(waiting)
    assert reconcile() == {}
