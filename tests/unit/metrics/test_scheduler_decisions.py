"""Scheduler decisions as /metrics counts them: by outcome with their latency, and a failure by
the filter that removed the last hosts left."""

from __future__ import annotations

import pytest

from cloud.compute import states
from cloud.metrics import exposition
from cloud.scheduler import tasks
from tests.factories import make_instance, make_node

from .conftest import Scrape

pytestmark = pytest.mark.django_db


def schedule(instance) -> None:
    tasks.schedule_instance(str(instance.uuid), "req-1")


def counted() -> Scrape:
    return Scrape(exposition.render().decode())


def test_a_placement_is_counted_and_timed_as_placed(sent):
    make_node(memory_mb=4096)
    schedule(make_instance(memory_mb=1024))

    after = counted()
    assert after.value("kumo_scheduler_decisions_total", outcome="placed") == 1
    assert after.value("kumo_scheduler_decision_duration_seconds_count", outcome="placed") == 1
    assert after.value("kumo_scheduler_decision_duration_seconds_sum") > 0
    assert after.value("kumo_scheduler_no_valid_host_total") == 0
    assert after.value("kumo_claims_total", kind="instance") == 1


def test_no_valid_host_is_counted_by_the_filter_that_removed_the_last_hosts(sent):
    make_node("small", memory_mb=512)
    make_node("off", memory_mb=8192, disabled=True)
    schedule(make_instance(memory_mb=1024))

    after = counted()
    assert after.value("kumo_scheduler_decisions_total", outcome="no_valid_host") == 1
    assert after.value("kumo_scheduler_no_valid_host_total", filter="RamFilter") == 1
    assert after.value("kumo_scheduler_no_valid_host_total") == 1
    assert after.value("kumo_scheduler_hosts_removed_total", filter="ComputeEnabledFilter") == 1
    assert after.value("kumo_scheduler_hosts_removed_total", filter="RamFilter") == 1


def test_no_host_at_all_and_an_instance_already_placed(sent):
    schedule(make_instance())
    schedule(make_instance(task_state=None, vm_state=states.ACTIVE))

    after = counted()
    assert after.value("kumo_scheduler_no_valid_host_total", filter="no_hosts") == 1
    assert after.value("kumo_scheduler_decisions_total", outcome="skipped") == 1
