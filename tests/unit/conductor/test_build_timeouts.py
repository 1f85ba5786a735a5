"""check_build_timeouts: no instance stays in BUILD forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute import states
from cloud.compute.models import Allocation, Instance, InstanceFault
from cloud.conductor import tasks
from cloud.conductor.build_timeouts import BUILD_TIMED_OUT, check_build_timeouts
from tests.factories import claim, host_state, make_instance, make_node

pytestmark = pytest.mark.django_db


def aged(instance: Instance, seconds: int) -> Instance:
    Instance.objects.filter(pk=instance.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
    return instance


def test_an_instance_building_too_long_goes_to_error_and_gives_back_its_claim(settings):
    settings.KUMO_BUILD_TIMEOUT = 600
    node = make_node()
    instance = make_instance()
    assert claim(instance, host_state(node))
    aged(instance, 601)

    assert check_build_timeouts() == 1

    instance.refresh_from_db()
    assert (instance.vm_state, instance.task_state) == (states.ERROR, None)
    assert instance.host == "compute-1"  # so a delete still reaches whatever the build left
    fault = InstanceFault.objects.get(instance=instance)
    assert (fault.code, fault.message, fault.host) == (500, BUILD_TIMED_OUT, "compute-1")
    assert not Allocation.objects.exists()
    node.refresh_from_db()
    assert node.vcpus_used == 0
    assert instance.actions.get().finish_time is not None


def test_a_recent_build_and_a_delete_in_progress_are_left_alone(settings):
    settings.KUMO_BUILD_TIMEOUT = 600
    recent = aged(make_instance(), 599)
    deleting = aged(make_instance(task_state=states.DELETING), 3600)
    active = aged(make_instance(vm_state=states.ACTIVE, task_state=None), 3600)

    assert check_build_timeouts() == 0

    for instance in (recent, deleting, active):
        before = instance.vm_state
        instance.refresh_from_db()
        assert instance.vm_state == before
    assert not InstanceFault.objects.exists()


def test_a_second_sweep_does_not_fault_twice(settings):
    settings.KUMO_BUILD_TIMEOUT = 60
    aged(make_instance(), 61)
    tasks.check_build_timeouts()
    tasks.check_build_timeouts()
    assert InstanceFault.objects.count() == 1


def test_a_timed_out_build_whose_domain_runs_keeps_its_claim_and_the_host_destroys_it(
    settings, sent
):
    from compute_agent import messages as msg

    settings.KUMO_BUILD_TIMEOUT = 600
    node = make_node()
    instance = make_instance()
    assert claim(instance, host_state(node))
    node.domains = [{"uuid": str(instance.uuid), "power_state": "running"}]
    node.save()
    aged(instance, 601)

    assert check_build_timeouts() == 1

    # The host really carries it until it is destroyed: the claim says so, and goes with it.
    assert Allocation.objects.filter(instance=instance).exists()
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_DESTROY, "compute.compute-1")]
