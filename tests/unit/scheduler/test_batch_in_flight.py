"""Batches of one scheduler process spread over different hosts (cloud/scheduler/batch.py,
_NodesInFlight): a batch chooses a node another batch of the process is claiming only when no
other host is left for a request, so two threads that read their shortlists at once do not both
go for the same best hosts and have one of them go round again."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import cast

import pytest
from django.db import connection, connections

from cloud.compute import claims, states
from cloud.compute.models import Instance
from cloud.scheduler import batch
from cloud.scheduler.host_state import HostState, request_spec_for
from cloud.scheduler.loader import load_filters, load_weighers
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="batches are decided on PostgreSQL only (row locks, one statement)"),
]


def _placed() -> dict[str, str]:
    return dict(Instance.objects.filter(task_state=states.SPAWNING).values_list("display_name",
                                                                                 "host"))


def _another_batch_holds(*node_ids: int) -> set[int]:
    held: set[int] = set()
    batch.in_flight.choose(held, lambda avoid: {
        str(i): cast(HostState, SimpleNamespace(node_id=node_id)) for i, node_id in enumerate(node_ids)})
    return held


def test_a_node_another_batch_is_claiming_is_chosen_only_when_no_other_is_left(sent):
    best = make_node("compute-1", memory_mb=8192)
    make_node("compute-2", memory_mb=2048)
    make_node("compute-3", memory_mb=2048)
    vms = [make_instance(f"vm-{i}", memory_mb=2048) for i in range(4)]
    other = _another_batch_holds(best.pk)
    try:
        assert schedule_instance(str(vms[0].uuid), "req-1") == 4
        # compute-1 has the most room, but another batch is claiming on it: the others first,
        # then compute-1 for the two that no other host has room for.
        assert _placed() == {"vm-0": "compute-2", "vm-1": "compute-3",
                             "vm-2": "compute-1", "vm-3": "compute-1"}
        # What the batch chose is no longer held once it is over; the other batch's still is.
        assert batch.in_flight.held() == {best.pk}
    finally:
        batch.in_flight.release(other)
    assert batch.in_flight.held() == set()


def test_the_nodes_of_a_batch_that_failed_are_no_longer_held(sent, monkeypatch):
    make_node("compute-1", memory_mb=8192)
    vm = make_instance("vm-0", memory_mb=2048)

    def claim_then_fail(wanted):
        assert batch.in_flight.held() == {wanted[0][3]}
        raise RuntimeError("the database went away")

    monkeypatch.setattr(claims, "claim_many", claim_then_fail)
    with pytest.raises(RuntimeError):
        batch.place(vm, request_spec_for(vm), "req-1", load_filters(), load_weighers())
    assert batch.in_flight.held() == set()


@pytest.mark.django_db(transaction=True)
def test_two_batches_choosing_at_once_claim_different_hosts_in_one_round_each(sent, settings,
                                                                               monkeypatch):
    # Two requests of two sizes (so each task's batch takes only its own kind), on hosts with
    # room for one of either: both batches read their shortlists and choose before either
    # claims, so without the hint both choose compute-0 and compute-1 and one goes round again.
    settings.KUMO_SCHEDULER_BATCH = 2
    for i in range(6):
        make_node(f"compute-{i}", memory_mb=3072, vcpus=8)
    kinds = {"a": 2048, "b": 2000}
    vms = {k: [make_instance(f"{k}-{i}", memory_mb=mb) for i in range(2)] for k, mb in kinds.items()}
    all_chosen = threading.Barrier(2, timeout=30)
    claimed: list[dict[str, bool | None]] = []
    real_claim_many = claims.claim_many
    first = threading.local()

    def claim_many_once_both_have_chosen(wanted):
        if not getattr(first, "done", False):
            first.done = True
            all_chosen.wait()
        outcomes = real_claim_many(wanted)
        claimed.append(outcomes)
        return outcomes

    monkeypatch.setattr(claims, "claim_many", claim_many_once_both_have_chosen)
    placed: list[int] = []

    def scheduler(leader: Instance) -> None:
        try:
            placed.append(schedule_instance(str(leader.uuid), "req-1", wait_for_hosts=False))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scheduler, args=(vms[k][0],)) for k in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(placed) == [2, 2]
    assert len(claimed) == 2 and all(all(o.values()) for o in claimed), claimed
    hosts = _placed()
    assert sorted(hosts.values()) == [f"compute-{i}" for i in range(4)]
    assert batch.in_flight.held() == set()
