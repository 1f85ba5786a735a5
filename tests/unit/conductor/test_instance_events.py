"""What the conductor does with spawned, spawn_failed and destroyed events, including redelivery."""

from __future__ import annotations

import pytest

from cloud.compute import action_records, states
from cloud.compute.models import (
    Allocation,
    ComputeNode,
    Instance,
    InstanceActionEvent,
    InstanceFault,
)
from cloud.conductor import tasks
from cloud.conductor.instance_events import apply_instance_event
from compute_agent import messages as msg
from tests.factories import claim, host_state, make_instance, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def apply(sent):
    def apply(instance: Instance, event: str, host: str = "compute-1", **fields) -> None:
        apply_instance_event(
            msg.InstanceEvent(
                request_id="req-2",
                instance_uuid=str(instance.uuid),
                host=host,
                event=event,
                **fields,
            )
        )
        instance.refresh_from_db()

    return apply


@pytest.fixture
def node() -> ComputeNode:
    return make_node("compute-1")


def spawning(node: ComputeNode, **fields) -> Instance:
    instance = make_instance(**fields)
    assert claim(instance, host_state(node))
    instance.refresh_from_db()
    return instance


def events(instance: Instance) -> list[tuple[str, str]]:
    return [
        (e.event, e.result) for e in InstanceActionEvent.objects.filter(action__instance=instance)
    ]


def test_spawned_makes_a_spawning_instance_active(apply, node, sent):
    instance = spawning(node)

    apply(instance, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)

    assert (instance.vm_state, instance.task_state, instance.power_state) == (
        states.ACTIVE,
        None,
        msg.POWER_RUNNING,
    )
    assert instance.launched_at is not None
    assert events(instance) == [(action_records.EVENT_SPAWN, action_records.SUCCESS)]
    assert instance.actions.get().finish_time is not None
    assert sent == []


def test_a_redelivered_spawned_event_changes_nothing_and_destroys_nothing(apply, node, sent):
    instance = spawning(node)
    apply(instance, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)
    launched_at = instance.launched_at

    apply(instance, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)

    assert (instance.vm_state, instance.launched_at) == (states.ACTIVE, launched_at)
    assert len(events(instance)) == 1
    assert sent == []


def test_spawned_after_a_delete_began_sends_destroy_to_that_host(apply, node, sent):
    instance = spawning(node)
    Instance.objects.filter(pk=instance.pk).update(task_state=states.DELETING)

    apply(instance, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)

    assert instance.vm_state == states.BUILDING and instance.task_state == states.DELETING
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_DESTROY, "compute.compute-1")]
    assert msg.DestroyRequest.from_dict(sent[0].args[0]) == msg.DestroyRequest(
        request_id="req-2", instance_uuid=str(instance.uuid)
    )


def test_spawned_for_a_deleted_instance_sends_destroy(apply, node, sent):
    instance = make_instance(deleted=True, vm_state=states.DELETED, task_state=None)
    apply(instance, msg.EVENT_SPAWNED)
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_DESTROY, "compute.compute-1")]


def test_spawned_on_a_host_the_instance_left_sends_destroy_there(apply, node, sent):
    instance = spawning(node)
    apply(instance, msg.EVENT_SPAWNED, host="compute-7")
    assert instance.task_state == states.SPAWNING
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_DESTROY, "compute.compute-7")]


def test_spawn_failed_releases_the_claim_and_reschedules_elsewhere(apply, node, sent):
    instance = spawning(node)

    apply(instance, msg.EVENT_SPAWN_FAILED, message="qemu: no KVM", details="Traceback …")

    assert (instance.vm_state, instance.task_state, instance.host, instance.node) == (
        states.BUILDING,
        states.SCHEDULING,
        None,
        None,
    )
    assert (instance.retries, instance.tried_hosts) == (1, ["compute-1"])
    assert not Allocation.objects.exists()
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (0, 0, 0)
    assert [(s.name, s.queue, s.args) for s in sent] == [
        (msg.TASK_SCHEDULE_INSTANCE, msg.SCHEDULER_QUEUE, [str(instance.uuid), "req-2", True])
    ]
    assert events(instance) == [(action_records.EVENT_SPAWN, action_records.ERROR)]
    assert instance.actions.get().finish_time is None
    assert not InstanceFault.objects.exists()


def test_spawn_failed_goes_to_error_with_a_fault_once_retries_are_used_up(
    apply, node, sent, settings
):
    settings.KUMO_MAX_BUILD_RETRIES = 1
    other = make_node("compute-2")
    instance = spawning(node)

    apply(instance, msg.EVENT_SPAWN_FAILED, message="first failure")
    assert instance.task_state == states.SCHEDULING
    assert claim(instance, host_state(other))

    apply(instance, msg.EVENT_SPAWN_FAILED, host="compute-2", message="x" * 300, details="tb")

    assert (instance.vm_state, instance.task_state, instance.host, instance.node) == (
        states.ERROR,
        None,
        None,
        None,
    )
    fault = InstanceFault.objects.get(instance=instance)
    assert (fault.code, fault.message, fault.details, fault.host) == (
        500,
        "x" * 255,
        "tb",
        "compute-2",
    )
    assert not Allocation.objects.exists()
    assert [s.name for s in sent] == [msg.TASK_SCHEDULE_INSTANCE]
    assert instance.actions.get().finish_time is not None


def test_a_redelivered_spawn_failed_event_does_not_reschedule_twice(apply, node, sent):
    instance = spawning(node)
    apply(instance, msg.EVENT_SPAWN_FAILED, message="boom")
    apply(instance, msg.EVENT_SPAWN_FAILED, message="boom")
    assert instance.retries == 1
    assert len(sent) == 1


def test_spawn_failed_while_deleting_leaves_the_delete_in_charge(apply, node, sent):
    instance = spawning(node)
    Instance.objects.filter(pk=instance.pk).update(task_state=states.DELETING)
    apply(instance, msg.EVENT_SPAWN_FAILED, message="boom")
    assert instance.task_state == states.DELETING
    assert Allocation.objects.filter(instance=instance).exists()
    assert sent == []


def test_destroyed_completes_a_delete_in_progress(apply, node, sent):
    instance = spawning(node)
    Instance.objects.filter(pk=instance.pk).update(
        vm_state=states.ACTIVE, task_state=states.DELETING
    )

    apply(instance, msg.EVENT_DESTROYED)

    assert (instance.deleted, instance.vm_state, instance.task_state) == (
        True,
        states.DELETED,
        None,
    )
    assert not Allocation.objects.exists()


def test_destroyed_for_an_orphan_domain_leaves_the_live_instance_alone(apply, node, sent):
    instance = spawning(node)
    Instance.objects.filter(pk=instance.pk).update(vm_state=states.ACTIVE, task_state=None)

    apply(instance, msg.EVENT_DESTROYED, host="compute-7")

    assert (instance.deleted, instance.vm_state) == (False, states.ACTIVE)
    assert Allocation.objects.filter(instance=instance).exists()


def test_instance_event_task_parses_the_contract_dict(node, sent):
    instance = spawning(node)
    event = msg.InstanceEvent(
        request_id="req-3",
        instance_uuid=str(instance.uuid),
        host="compute-1",
        event=msg.EVENT_SPAWNED,
        power_state=msg.POWER_RUNNING,
    )
    tasks.instance_event(event.to_dict())
    instance.refresh_from_db()
    assert instance.vm_state == states.ACTIVE


def test_an_unknown_event_is_ignored(apply, node, sent):
    instance = spawning(node)
    apply(instance, "exploded")
    assert instance.task_state == states.SPAWNING
