"""A scheduler passes over a host another claim is taking room on at that moment, instead of
queueing behind it (PostgreSQL's row locks, for real: SQLite has none)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from cloud.compute import states
from cloud.compute.models import ComputeNode
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL (set DATABASE_URL=postgres://…): row locks"),
]


def _hold_row_lock(node_id: int, locked: threading.Event, release: threading.Event) -> None:
    # Another scheduler in the middle of its claim on this node: its row lock until it commits.
    try:
        with transaction.atomic():
            ComputeNode.objects.select_for_update().filter(pk=node_id).get()
            locked.set()
            release.wait(10)
    finally:
        connections.close_all()


def _while_locked(node: ComputeNode, work, release_after: float | None = None) -> None:
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_row_lock, args=(node.pk, locked, release))
    holder.start()
    assert locked.wait(10)
    timer = threading.Timer(release_after, release.set) if release_after else None
    if timer:
        timer.start()
    try:
        work()
    finally:
        release.set()
        holder.join()


def test_a_host_being_claimed_on_is_passed_over_for_the_next_best(sent):
    best = make_node("compute-1", memory_mb=8192)
    make_node("compute-2", memory_mb=4096)
    instance = make_instance(memory_mb=1024)

    _while_locked(best, lambda: schedule_instance(str(instance.uuid), "req-1"))

    instance.refresh_from_db()
    assert (instance.host, instance.task_state) == ("compute-2", states.SPAWNING)


def test_when_only_the_busy_host_fits_the_scheduler_waits_for_it(sent):
    only = make_node("compute-1", memory_mb=8192)
    make_node("compute-2", memory_mb=512)
    instance = make_instance(memory_mb=1024)

    _while_locked(only, lambda: schedule_instance(str(instance.uuid), "req-1"), release_after=0.5)

    instance.refresh_from_db()
    assert (instance.host, instance.task_state) == ("compute-1", states.SPAWNING)
