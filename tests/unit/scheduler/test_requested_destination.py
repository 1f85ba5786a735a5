"""A boot an admin pointed at a host: 2.74's host/hypervisor_hostname narrow the choice and every
filter still runs; "zone:host:node" forces the host and the other filters are skipped."""

from __future__ import annotations

import pytest

from cloud.compute import states
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(sent):
    def run(instance):
        schedule_instance(str(instance.uuid), "req-1", wait_for_hosts=False)
        instance.refresh_from_db()
        return instance

    return run


def test_a_requested_host_is_chosen_over_a_roomier_one(run):
    make_node("compute-1", memory_mb=2048)
    make_node("compute-2", memory_mb=8192)
    placed = run(make_instance(memory_mb=512, vm_state=states.BUILDING,
                               requested_host="compute-1"))
    assert placed.host == "compute-1"


def test_a_requested_node_names_its_host(run):
    make_node("compute-1", memory_mb=2048)
    make_node("compute-2", memory_mb=8192)
    placed = run(make_instance(memory_mb=512, vm_state=states.BUILDING,
                               requested_node="compute-1.local"))
    assert placed.host == "compute-1"


def test_a_requested_host_still_goes_through_the_filters(run):
    make_node("compute-1", memory_mb=8192, disabled=True)
    make_node("compute-2", memory_mb=8192)
    failed = run(make_instance(memory_mb=512, vm_state=states.BUILDING,
                               requested_host="compute-1"))
    assert (failed.vm_state, failed.host) == (states.ERROR, None)
    assert "ComputeEnabledFilter" in failed.faults.get().details


def test_a_forced_host_skips_the_other_filters(run):
    make_node("compute-1", memory_mb=8192, disabled=True)
    make_node("compute-2", memory_mb=8192)
    placed = run(make_instance(memory_mb=512, vm_state=states.BUILDING,
                               requested_host="compute-1", force_destination=True))
    assert placed.host == "compute-1"


def test_a_forced_host_without_room_is_still_refused_by_the_claim(run):
    make_node("compute-1", memory_mb=256)
    placed = run(make_instance(memory_mb=512, vm_state=states.BUILDING,
                               requested_host="compute-1", force_destination=True))
    assert placed.vm_state == states.ERROR
