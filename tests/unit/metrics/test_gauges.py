"""What /metrics reads at scrape time: instances by state, each host's status, capacity and use,
and the messages waiting in every queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from cloud.compute import states
from tests.factories import claim, host_state, make_instance, make_node

pytestmark = pytest.mark.django_db

MIB, GIB = 1024**2, 1024**3


def test_instances_are_counted_by_vm_state_and_task_state(scrape):
    make_instance("a", vm_state=states.ACTIVE, task_state=None)
    make_instance("b", vm_state=states.ACTIVE, task_state=None)
    make_instance("c", vm_state=states.ERROR, task_state=None)
    make_instance("d")  # building, scheduling
    make_instance("gone", vm_state=states.DELETED, task_state=None, deleted=True)

    after = scrape()
    assert after.value("kumo_instances", vm_state="active", task_state="none") == 2
    assert after.value("kumo_instances", vm_state="error") == 1
    assert after.value("kumo_instances", vm_state="building", task_state="scheduling") == 1
    assert after.value("kumo_instances") == 4


def test_a_hosts_capacity_allocatable_room_and_use_move_with_its_claims(scrape):
    node = make_node("compute-1", vcpus=4, memory_mb=4096, local_gb=40, cpu_ratio=4.0,
                     ram_ratio=1.5)
    before = scrape()
    assert before.value("kumo_host_vcpus", host="compute-1", kind="total") == 4
    assert before.value("kumo_host_vcpus", host="compute-1", kind="allocatable") == 16
    assert before.value("kumo_host_memory_bytes", host="compute-1", kind="allocatable") == (
        6144 * MIB)
    assert before.value("kumo_host_disk_bytes", host="compute-1", kind="total") == 40 * GIB
    assert before.value("kumo_host_memory_bytes", host="compute-1", kind="used") == 0

    assert claim(make_instance(vcpus=2, memory_mb=1024, root_gb=10), host_state(node))

    after = scrape()
    assert after.value("kumo_host_vcpus", host="compute-1", kind="used") == 2
    assert after.value("kumo_host_memory_bytes", host="compute-1", kind="used") == 1024 * MIB
    assert after.value("kumo_host_disk_bytes", host="compute-1", kind="used") == 10 * GIB


def test_each_hosts_status_is_the_one_os_services_shows(scrape):
    make_node("up-host")
    make_node("quiet-host", last_seen_up=timezone.now() - timedelta(hours=1))
    make_node("disabled-host", disabled=True)

    after = scrape()
    assert after.value("kumo_host_status", host="up-host", status="up") == 1
    assert after.value("kumo_host_status", host="quiet-host", status="unknown") == 1
    assert after.value("kumo_host_status", host="disabled-host", status="maintenance") == 1
    assert after.value("kumo_host_status", host="up-host") == 1


def test_queue_depth_counts_the_messages_waiting_in_each_queue(scrape):
    make_node("compute-1")
    make_node("compute-2")
    before = scrape()
    queues = {labels["queue"] for labels in before.labels_of("kumo_queue_depth")}
    assert queues == {"scheduler", "conductor", "compute.compute-1", "compute.compute-2"}
    assert before.value("kumo_queue_depth") == 0

    with Connection(settings.CELERY_BROKER_URL) as connection:
        queue = connection.SimpleQueue("compute.compute-2")
        for n in range(3):
            queue.put({"n": n})
        try:
            after = scrape()
        finally:
            queue.clear()
            queue.close()
    assert after.value("kumo_queue_depth", queue="compute.compute-2") == 3
    assert after.value("kumo_queue_depth", queue="scheduler") == 0


def test_an_unreachable_broker_leaves_out_the_queues_only(scrape, settings):
    make_node("compute-1")
    scrape()  # the fixture's broker first, so the next one is swapped in afterwards
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    from django.test import Client

    from .conftest import Scrape

    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    after = Scrape(response.content.decode())
    assert after.value("kumo_metrics_collector_up", collector="queues") == 0
    assert after.value("kumo_host_vcpus", host="compute-1", kind="total") == 4
