"""Claims and releases against the database: counters never exceed capacity × ratio."""

from __future__ import annotations

import pytest

from cloud.compute import states
from cloud.compute.claims import release
from cloud.compute.models import Allocation, ComputeNode, Instance
from tests.factories import claim, host_state, make_instance, make_node

pytestmark = pytest.mark.django_db


def counters(node: ComputeNode) -> tuple[int, int, int]:
    node.refresh_from_db()
    return node.vcpus_used, node.memory_mb_used, node.local_gb_used


def test_claim_raises_the_counters_records_the_allocation_and_places_the_instance():
    node = make_node(vcpus=4, memory_mb=4096, local_gb=40)
    instance = make_instance(vcpus=2, memory_mb=1024, root_gb=10, ephemeral_gb=5)

    assert claim(instance, host_state(node))

    assert counters(node) == (2, 1024, 15)
    allocation = Allocation.objects.get(instance=instance)
    assert (allocation.node_id, allocation.vcpus, allocation.memory_mb, allocation.disk_gb) == (
        node.pk,
        2,
        1024,
        15,
    )
    instance.refresh_from_db()
    assert (instance.host, instance.node, instance.task_state) == (
        "compute-1",
        "compute-1.local",
        states.SPAWNING,
    )


def test_claim_never_overcommits_a_node_filled_exactly():
    node = make_node(vcpus=2, memory_mb=2048, local_gb=20)
    first, second, third = (make_instance(memory_mb=1024, root_gb=10) for _ in range(3))

    assert claim(first, host_state(node))
    assert claim(second, host_state(node))
    assert not claim(third, host_state(node))

    assert counters(node) == (2, 2048, 20)
    third.refresh_from_db()
    assert (third.host, third.task_state) == (None, states.SCHEDULING)
    assert not Allocation.objects.filter(instance=third).exists()


def test_claim_rechecks_capacity_in_the_database_not_in_the_stale_host_state():
    node = make_node(memory_mb=1024)
    stale = host_state(node)  # read while the node was empty
    assert claim(make_instance(memory_mb=1024), stale)
    assert not claim(make_instance(memory_mb=1024), stale)


def test_claim_honours_the_allocation_ratio():
    node = make_node(vcpus=1, cpu_ratio=4.0)
    claims = [claim(make_instance(vcpus=1, memory_mb=1, root_gb=0), host_state(node)) for _ in range(5)]
    assert claims == [True, True, True, True, False]
    assert counters(node)[0] == 4


def test_a_second_claim_for_the_same_instance_is_refused():
    node = make_node()
    other = make_node("compute-2")
    instance = make_instance()
    assert claim(instance, host_state(node))

    # As if a redelivered task raced past the scheduling check with a stale row.
    Instance.objects.filter(pk=instance.pk).update(host=None, task_state=states.SCHEDULING)
    assert not claim(instance, host_state(other))

    assert counters(other) == (0, 0, 0)
    assert Allocation.objects.get(instance=instance).node_id == node.pk


def test_claim_on_an_instance_no_longer_scheduling_is_refused_and_leaves_counters_alone():
    node = make_node()
    instance = make_instance(task_state=states.DELETING)
    assert not claim(instance, host_state(node))
    assert counters(node) == (0, 0, 0)
    assert not Allocation.objects.exists()


def test_claim_on_a_deleted_instance_is_refused():
    node = make_node()
    instance = make_instance(deleted=True)
    assert not claim(instance, host_state(node))
    assert counters(node) == (0, 0, 0)


def test_release_gives_back_what_the_claim_took():
    node = make_node()
    kept, released = make_instance(vcpus=1), make_instance(vcpus=2, memory_mb=2048)
    assert claim(kept, host_state(node))
    assert claim(released, host_state(node))

    release(str(released.uuid))

    assert counters(node) == (1, 1024, 10)
    assert not Allocation.objects.filter(instance=released).exists()


def test_release_is_idempotent():
    node = make_node()
    instance = make_instance()
    assert claim(instance, host_state(node))

    release(str(instance.uuid))
    release(str(instance.uuid))

    assert counters(node) == (0, 0, 0)


def test_release_without_an_allocation_does_nothing():
    node = make_node()
    release(str(make_instance().uuid))
    assert counters(node) == (0, 0, 0)
