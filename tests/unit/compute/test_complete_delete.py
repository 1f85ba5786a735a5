"""complete_delete: the last step of every delete, safe to run twice."""

from __future__ import annotations

import pytest

from cloud.compute import action_records, states
from cloud.compute.models import Allocation, InstanceActionEvent
from cloud.compute.servers import complete_delete
from cloud.network.models import Network, Port
from compute_agent import messages as msg
from tests.factories import claim, host_state, make_instance, make_node, owner

pytestmark = pytest.mark.django_db


def test_marks_the_instance_deleted_and_frees_its_claim_and_ports():
    node = make_node()
    instance = make_instance(action="delete")
    assert claim(instance, host_state(node))
    network = Network.objects.create(name="private", project=owner()[0])
    Port.objects.create(network=network, device_id=str(instance.uuid), mac_address="fa:16:3e:0:0:1")
    kept = Port.objects.create(network=network, device_id="other", mac_address="fa:16:3e:0:0:2")

    complete_delete(str(instance.uuid))

    instance.refresh_from_db()
    assert (instance.deleted, instance.vm_state, instance.task_state, instance.power_state) == (
        True,
        states.DELETED,
        None,
        msg.POWER_NOSTATE,
    )
    assert instance.deleted_at is not None and instance.terminated_at == instance.deleted_at
    assert not Allocation.objects.exists()
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (0, 0, 0)
    assert list(Port.objects.all()) == [kept]
    event = InstanceActionEvent.objects.get(action__instance=instance)
    assert (event.event, event.result) == (action_records.EVENT_TERMINATE, action_records.SUCCESS)
    assert event.action.finish_time is not None


def test_completes_the_delete_of_an_instance_that_never_got_a_host():
    instance = make_instance(task_state=states.DELETING)
    complete_delete(str(instance.uuid))
    instance.refresh_from_db()
    assert instance.deleted


def test_running_it_twice_changes_nothing_the_second_time():
    instance = make_instance()
    complete_delete(str(instance.uuid))
    instance.refresh_from_db()
    deleted_at = instance.deleted_at

    complete_delete(str(instance.uuid))

    instance.refresh_from_db()
    assert instance.deleted_at == deleted_at
    assert InstanceActionEvent.objects.filter(action__instance=instance).count() == 1


def test_an_unknown_instance_is_a_no_op():
    complete_delete("00000000-0000-0000-0000-000000000000")
