"""schedule_instance end to end against the database, with the broker edge recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute import action_records, states
from cloud.compute.models import Allocation, ComputeNode, InstanceActionEvent, InstanceFault
from cloud.scheduler.manager import NO_VALID_HOST, schedule_instance
from compute_agent import messages as msg
from tests.factories import make_instance, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(sent):
    def run(instance, *, wait_for_hosts: bool = True) -> None:
        schedule_instance(str(instance.uuid), "req-1", wait_for_hosts=wait_for_hosts)
        instance.refresh_from_db()

    return run


def test_places_the_instance_on_the_host_with_most_free_ram_and_sends_the_spawn(run, sent):
    make_node("compute-1", memory_mb=2048)
    make_node("compute-2", memory_mb=8192)
    instance = make_instance(memory_mb=1024)

    run(instance)

    assert (instance.host, instance.task_state) == ("compute-2", states.SPAWNING)
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_SPAWN, "compute.compute-2")]
    request = msg.SpawnRequest.from_dict(sent[0].args[0])
    assert (request.instance_uuid, request.request_id) == (str(instance.uuid), "req-1")
    event = InstanceActionEvent.objects.get(action__instance=instance)
    assert (event.event, event.result, event.host) == (
        action_records.EVENT_SCHEDULE,
        action_records.SUCCESS,
        "compute-2",
    )


def test_skips_hosts_a_failed_build_already_tried(run, sent):
    make_node("compute-1", memory_mb=8192)
    make_node("compute-2", memory_mb=2048)
    instance = make_instance(tried_hosts=["compute-1"])

    run(instance)

    assert instance.host == "compute-2"


# 1: one request at a time; 16: with the boots waiting alongside (cloud/scheduler/batch.py).
@pytest.mark.parametrize("batch_size", [1, 16])
def test_tries_the_next_host_when_the_best_one_is_taken_meanwhile(run, sent, monkeypatch,
                                                                  settings, batch_size):
    settings.KUMO_SCHEDULER_BATCH = batch_size
    make_node("compute-1", memory_mb=2048)
    best = make_node("compute-2", memory_mb=8192)
    instance = make_instance(memory_mb=1024)

    from cloud.scheduler import batch, manager

    real_load = manager.load_candidates

    def load_then_someone_fills_best(*args, **kwargs):
        hosts = real_load(*args, **kwargs)
        ComputeNode.objects.filter(pk=best.pk).update(memory_mb_used=8192)
        return hosts

    monkeypatch.setattr(manager, "load_candidates", load_then_someone_fills_best)
    monkeypatch.setattr(batch, "load_candidates", load_then_someone_fills_best)
    run(instance)

    assert instance.host == "compute-1"
    assert [s.queue for s in sent] == ["compute.compute-1"]


def test_when_every_shortlisted_host_is_taken_meanwhile_the_others_are_tried(
        run, sent, monkeypatch, settings):
    from cloud.scheduler import manager, prefilter

    settings.KUMO_SCHEDULER_BATCH = 1  # the one-request path's fallback to every host
    make_node("compute-1", memory_mb=2048)
    best = make_node("compute-2", memory_mb=8192)
    instance = make_instance(memory_mb=1024)
    monkeypatch.setattr(prefilter, "SHORTLIST_SIZE", 1)
    real_load = manager.load_candidates

    def load_then_someone_fills_best(*args):
        hosts = real_load(*args)
        assert [h.host for h in hosts] == ["compute-2"]
        ComputeNode.objects.filter(pk=best.pk).update(memory_mb_used=8192)
        return hosts

    monkeypatch.setattr(manager, "load_candidates", load_then_someone_fills_best)
    run(instance)

    assert instance.host == "compute-1"
    assert [s.queue for s in sent] == ["compute.compute-1"]


def test_does_nothing_for_an_instance_already_placed(run, sent):
    make_node()
    instance = make_instance(task_state=states.SPAWNING, host="compute-9")
    run(instance)
    assert sent == []
    assert not Allocation.objects.exists()


def test_does_nothing_for_a_deleted_instance(run, sent):
    make_node()
    instance = make_instance(deleted=True)
    run(instance)
    assert sent == []
    assert instance.vm_state == states.BUILDING


def test_a_redelivered_task_claims_and_sends_only_once(run, sent):
    make_node()
    instance = make_instance()
    run(instance)
    run(instance)
    assert len(sent) == 1
    assert Allocation.objects.count() == 1


def test_no_valid_host_puts_the_instance_in_error_with_a_fault_naming_filters_and_hosts(run, sent):
    make_node("compute-1", memory_mb=512)
    make_node("compute-2", memory_mb=512)
    make_node("compute-3", vcpus=1)
    make_node("compute-4", disabled=True)
    make_node("compute-5", last_seen_up=timezone.now() - timedelta(hours=1))
    instance = make_instance(vcpus=2, memory_mb=1024)

    run(instance, wait_for_hosts=False)  # the reconciler's last try: no more waiting for compute-5

    assert (instance.vm_state, instance.task_state, instance.host) == (states.ERROR, None, None)
    fault = InstanceFault.objects.get(instance=instance)
    assert fault.code == 500 and fault.message.startswith(NO_VALID_HOST)
    # Members see the message but not the details: the message carries the counts, no host names.
    assert "RamFilter removed 2 of 5 hosts" in fault.message
    assert "compute-" not in fault.message
    assert "ComputeEnabledFilter removed 1 host (compute-4)" in fault.details
    assert "ComputeAliveFilter removed 1 host (compute-5)" in fault.details
    assert "RamFilter removed 2 hosts (compute-1, compute-2)" in fault.details
    assert "VcpuFilter removed 1 host (compute-3)" in fault.details
    # and each host's reason in numbers, as the dry run gives it (cloud/scheduler/explain.py)
    assert "  compute-1: RAM: needs 1024 MiB, 512 free after the 1.0× ratio" in fault.details
    assert "  compute-3: vCPUs: needs 2, 1 free after the 1.0× ratio" in fault.details
    assert "  compute-4: Service: disabled by an operator" in fault.details
    assert sent == []
    event = InstanceActionEvent.objects.get(action__instance=instance)
    assert (event.event, event.result) == (action_records.EVENT_SCHEDULE, action_records.ERROR)
    assert event.action.finish_time is not None


def test_no_valid_host_without_any_compute_host_says_none_are_registered(run, sent):
    instance = make_instance()
    run(instance)
    assert instance.vm_state == states.ERROR
    assert InstanceFault.objects.get(instance=instance).details == (
        "no compute hosts are registered"
    )


def test_works_for_an_instance_without_an_action(run, sent):
    make_node()
    instance = make_instance(action=None)
    run(instance)
    assert instance.task_state == states.SPAWNING
    assert len(sent) == 1


def test_when_only_silent_hosts_would_fit_the_instance_waits_for_them(run, sent):
    make_node("compute-1", memory_mb=512)
    make_node("compute-2", last_seen_up=timezone.now() - timedelta(minutes=5))  # broker away?
    instance = make_instance(memory_mb=1024)

    run(instance)

    assert (instance.vm_state, instance.task_state, instance.host) == (
        states.BUILDING, states.SCHEDULING, None)
    assert not InstanceFault.objects.filter(instance=instance).exists() and sent == []
    event = InstanceActionEvent.objects.get(action__instance=instance)
    assert "not responding; waiting" in event.details and event.action.finish_time is None


def test_a_host_that_reports_again_takes_the_waiting_instance(run, sent):
    silent = make_node("compute-2", last_seen_up=timezone.now() - timedelta(minutes=5))
    instance = make_instance(memory_mb=1024)
    run(instance)
    silent.service.last_seen_up = timezone.now()
    silent.service.save()

    run(instance)  # as the reconciler asks again

    assert (instance.task_state, instance.host) == (states.SPAWNING, "compute-2")
    assert [s.name for s in sent] == [msg.TASK_SPAWN]


def test_a_host_no_filter_but_liveness_would_refuse_does_not_make_it_wait(run, sent):
    make_node("compute-1", memory_mb=512, last_seen_up=timezone.now() - timedelta(minutes=5))
    instance = make_instance(memory_mb=1024)

    run(instance)

    assert (instance.vm_state, instance.task_state) == (states.ERROR, None)
