"""A batch takes as many boots as fit in its time budget (cloud/scheduler/batch.py): every boot of
a batch waits for the whole batch, so the batch's size is what bounds a decision's latency."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from cloud.compute import states
from cloud.compute.models import Instance
from cloud.scheduler import batch
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node


def test_the_size_is_what_fits_in_the_budget_at_the_time_per_boot_measured(settings):
    settings.KUMO_SCHEDULER_BATCH = 16
    settings.KUMO_SCHEDULER_BATCH_BUDGET_MS = 20
    # Before any batch was timed: the first guess, 5 ms a boot.
    assert batch.take_size() == 4
    # Batches of 10 that took 19 ms (1.9 ms a boot): the estimate moves a fifth of the way at a
    # time, and the size follows it up to what fits.
    for _ in range(30):
        batch.time_per_boot.note(0.019, 10)
    assert batch.time_per_boot.seconds == pytest.approx(0.0019, rel=0.01)
    assert batch.take_size() == 10
    # Very slow: still MIN_TAKE (4); fewer would share the batch's queries and commit among
    # fewer boots without making it much shorter.
    for _ in range(30):
        batch.time_per_boot.note(0.100, 1)
    assert batch.take_size() == batch.MIN_TAKE == 4
    settings.KUMO_SCHEDULER_BATCH = 2
    assert batch.take_size() == 2
    settings.KUMO_SCHEDULER_BATCH = 16
    # Fast: never more than KUMO_SCHEDULER_BATCH.
    for _ in range(60):
        batch.time_per_boot.note(0.001, 16)
    assert batch.take_size() == 16


def test_no_budget_takes_the_whole_batch_size(settings):
    settings.KUMO_SCHEDULER_BATCH = 16
    # No budget is the default.
    del settings.KUMO_SCHEDULER_BATCH_BUDGET_MS
    for _ in range(30):
        batch.time_per_boot.note(0.100, 1)
    assert batch.take_size() == 16


def test_a_fixed_cost_shared_by_the_boots_settles_where_a_batch_takes_the_budget(settings):
    settings.KUMO_SCHEDULER_BATCH = 16
    settings.KUMO_SCHEDULER_BATCH_BUDGET_MS = 20
    # A batch of n taking 6 ms plus 1 ms a boot: from any start the sizes settle at 13 or 14 (a batch
    # of 14 takes 20 ms), neither shrinking to one nor growing past the budget.
    for start in (1, 16):
        batch.time_per_boot.seconds = 0.020 / start
        for _ in range(100):
            n = batch.take_size()
            batch.time_per_boot.note(0.006 + 0.001 * n, n)
        assert batch.take_size() in (13, 14)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="batches are decided on PostgreSQL only (row locks, one statement)")
def test_a_task_takes_no_more_boots_than_the_budget_allows_and_times_its_batch(sent, settings):
    settings.KUMO_SCHEDULER_BATCH = 16
    settings.KUMO_SCHEDULER_BATCH_BUDGET_MS = 20
    make_node("compute-1", memory_mb=65536, vcpus=64, local_gb=1000)
    vms = [make_instance(f"vm-{i}") for i in range(8)]
    # Batches lately took 5 ms a boot: 4 fit in 20 ms.
    batch.time_per_boot.seconds = 0.005

    before = time.perf_counter()
    assert schedule_instance(str(vms[0].uuid), "req-1") == 4
    took = time.perf_counter() - before

    assert Instance.objects.filter(task_state=states.SPAWNING).count() == 4
    assert len(sent) == 4
    # This batch's own time per boot went into the estimate (a fifth of it).
    assert batch.time_per_boot.seconds == pytest.approx(0.8 * 0.005 + 0.2 * took / 4, rel=0.2)
    # The others' own tasks place the rest, each batch at most the size the budget gives.
    for vm in vms[1:]:
        most = batch.take_size()
        assert schedule_instance(str(vm.uuid), "req-2") <= most
    assert Instance.objects.filter(task_state=states.SPAWNING).count() == 8
