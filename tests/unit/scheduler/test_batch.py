"""One schedule task places the boots waiting alongside its own (cloud/scheduler/batch.py): each
on the host the one-at-a-time path would give it, never past a node's room, with its own event and
spawn message; boots that ask for something else are left to their own tasks; and batches of one
process that choose at once spread over different hosts."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace
from typing import cast

import pytest
from django.db import connection, connections
from django.db.models import Sum

from cloud.compute import action_records, claims, states
from cloud.compute.models import (
    Allocation,
    ComputeNode,
    Instance,
    InstanceActionEvent,
    ServerGroup,
    ServerGroupMember,
)
from cloud.scheduler import batch
from cloud.scheduler.host_state import HostState, request_spec_for
from cloud.scheduler.loader import load_filters, load_weighers
from cloud.scheduler.manager import schedule_instance
from compute_agent import messages as msg
from tests.factories import make_instance, make_node, owner

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="batches are decided on PostgreSQL only (row locks, one statement)"),
]


def _placed() -> dict[str, str]:
    return dict(Instance.objects.filter(task_state=states.SPAWNING).values_list("display_name",
                                                                                 "host"))


def _counters_match_claims() -> None:
    for node in ComputeNode.objects.all():
        totals = Allocation.objects.filter(node=node).aggregate(
            vcpus=Sum("vcpus"), memory_mb=Sum("memory_mb"), disk_gb=Sum("disk_gb"))
        claimed = (totals["vcpus"] or 0, totals["memory_mb"] or 0, totals["disk_gb"] or 0)
        assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == claimed, node.host
        assert node.memory_mb_used <= node.memory_mb * node.ram_allocation_ratio, node.host
        assert node.vcpus_used <= node.vcpus * node.cpu_allocation_ratio, node.host


def test_one_task_places_the_boots_waiting_alike_spread_as_one_at_a_time_would(sent):
    make_node("compute-1", memory_mb=8192)
    make_node("compute-2", memory_mb=6144)
    make_node("compute-3", memory_mb=4096)
    vms = [make_instance(f"vm-{i}", memory_mb=2048) for i in range(5)]

    assert schedule_instance(str(vms[0].uuid), "req-1") == 5

    # Most free RAM first (ties by name), each choice counted before the next, free GiB after
    # each: c1 8→6; c1 6→4 (c1 and c2 at 6); c2 6→4; c1 4→2 (all three at 4); c2 4→2.
    assert _placed() == {"vm-0": "compute-1", "vm-1": "compute-1", "vm-2": "compute-2",
                         "vm-3": "compute-1", "vm-4": "compute-2"}
    _counters_match_claims()
    # Each its own spawn message, with its own request id (the others': their action's).
    spawns = {msg.SpawnRequest.from_dict(s.args[0]).instance_uuid: (s.queue, s.args[0])
              for s in sent}
    assert len(sent) == 5 and set(spawns) == {str(v.uuid) for v in vms}
    assert spawns[str(vms[0].uuid)][1]["request_id"] == "req-1"
    assert spawns[str(vms[1].uuid)][1]["request_id"] == "req-test"
    assert spawns[str(vms[2].uuid)][0] == "compute.compute-2"
    events = InstanceActionEvent.objects.filter(event=action_records.EVENT_SCHEDULE)
    assert sorted((e.action.instance.display_name, e.host) for e in events) == sorted(
        _placed().items())
    # Their own tasks, when they come, find nothing to do.
    assert [schedule_instance(str(v.uuid), "req-2") for v in vms[1:]] == [0, 0, 0, 0]
    assert len(sent) == 5


def test_a_batch_fills_nodes_exactly_and_leaves_the_rest_waiting_for_their_own_tasks(sent):
    make_node("compute-1", memory_mb=4096)
    make_node("compute-2", memory_mb=2048)
    vms = [make_instance(f"vm-{i}", memory_mb=2048) for i in range(5)]

    assert schedule_instance(str(vms[0].uuid), "req-1") == 3

    assert Counter(_placed().values()) == {"compute-1": 2, "compute-2": 1}
    assert Instance.objects.filter(task_state=states.SCHEDULING, host__isnull=True).count() == 2
    _counters_match_claims()
    # The next one's own task says why nothing fits.
    assert schedule_instance(str(vms[3].uuid), "req-2", wait_for_hosts=False) == 0
    vms[3].refresh_from_db()
    assert vms[3].vm_state == states.ERROR


def test_a_node_filled_since_the_shortlist_was_read_refuses_its_share_and_others_are_tried(
        sent, monkeypatch):
    best = make_node("compute-1", memory_mb=8192)
    make_node("compute-2", memory_mb=4096)
    vms = [make_instance(f"vm-{i}", memory_mb=2048) for i in range(3)]
    real_load = batch.load_candidates

    def load_then_another_scheduler_fills_most_of_best(*args, **kwargs):
        hosts = real_load(*args, **kwargs)
        ComputeNode.objects.filter(pk=best.pk).update(memory_mb_used=6144)
        return hosts

    monkeypatch.setattr(batch, "load_candidates", load_then_another_scheduler_fills_most_of_best)
    assert schedule_instance(str(vms[0].uuid), "req-1") == 2

    # The batch gave all three to compute-1 (8 GiB free when read), which had room for one of
    # them when claimed: it took none (all or nothing per node's share), and the next round gave
    # compute-2 the two it had room for; the third waits for its own task.
    assert _placed() == {"vm-0": "compute-2", "vm-1": "compute-2"}
    assert ComputeNode.objects.get(pk=best.pk).memory_mb_used == 6144
    assert not Allocation.objects.filter(node=best).exists()


def test_boots_asking_for_something_else_are_left_to_their_own_tasks(sent):
    make_node("compute-1", memory_mb=16384, vcpus=16)
    make_node("compute-2", memory_mb=16384, vcpus=16)
    leader = make_instance("leader")
    make_instance("bigger", memory_mb=2048)
    make_instance("tried-before", tried_hosts=["compute-1"])
    make_instance("asked-for-a-host", requested_host="compute-2")
    make_instance("other-zone", availability_zone="edge")
    # another image may ask for another kind of host (ImagePropertiesFilter)
    make_instance("other-image", image_ref="6f1b43a0-0000-4000-8000-00000000c7c7")
    make_instance("being-deleted", deleted=True)
    make_instance("unshelving", vm_state=states.SHELVED_OFFLOADED)
    project, user = owner()
    group = ServerGroup.objects.create(name="g", project=project, user=user,
                                       policy="anti-affinity")
    ServerGroupMember.objects.create(group=group, instance=make_instance("in-a-group"))
    make_instance("alike")

    assert schedule_instance(str(leader.uuid), "req-1") == 2

    assert set(_placed()) == {"leader", "alike"}


def test_a_batch_size_of_one_decides_one_boot_per_task(sent, settings):
    settings.KUMO_SCHEDULER_BATCH = 1
    make_node("compute-1", memory_mb=8192)
    vms = [make_instance(f"vm-{i}") for i in range(3)]

    assert schedule_instance(str(vms[0].uuid), "req-1") == 1
    assert set(_placed()) == {"vm-0"}


@pytest.mark.django_db(transaction=True)
def test_four_schedulers_deciding_batches_at_once_never_overcommit(sent):
    # Room for 24 of 40 boots: 6 nodes × 4 GiB, 1 GiB each; every scheduler starts at once, each
    # with its own share of the tasks, so their batches race for the same best hosts.
    for i in range(6):
        make_node(f"compute-{i}", memory_mb=4096, vcpus=8)
    vms = [make_instance(f"vm-{i:02d}") for i in range(40)]
    start = threading.Barrier(4)
    placed: list[int] = []

    def scheduler(share: list[Instance]) -> None:
        try:
            start.wait()
            for vm in share:
                placed.append(schedule_instance(str(vm.uuid), "req-1", wait_for_hosts=False))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scheduler, args=(vms[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(placed) == 24
    assert Instance.objects.filter(task_state=states.SPAWNING).count() == 24
    assert Instance.objects.filter(vm_state=states.ERROR).count() == 16
    assert Allocation.objects.count() == 24
    _counters_match_claims()
    assert all(n.memory_mb_used == 4096 for n in ComputeNode.objects.all())
    assert len([s for s in sent if s.name == msg.TASK_SPAWN]) == 24


def test_a_waiting_boot_that_somehow_holds_a_claim_is_refused_and_nothing_is_claimed_twice(
    sent
):
    # The take does not look for claims (none can exist for a waiting boot); the claim does.
    make_node("compute-1", memory_mb=8192)
    node = make_node("compute-2", memory_mb=8192)
    vms = [make_instance(f"vm-{i}", memory_mb=1024) for i in range(3)]
    Allocation.objects.create(instance_id=vms[2].pk, node=node, vcpus=1, memory_mb=1024,
                              disk_gb=1)

    schedule_instance(str(vms[0].uuid), "req-1")

    placed = _placed()
    assert sorted(placed) == ["vm-0", "vm-1"]
    assert Allocation.objects.filter(instance_id=vms[2].pk).count() == 1
    assert Instance.objects.get(pk=vms[2].pk).task_state == states.SCHEDULING


def test_the_take_of_waiting_boots_reads_no_claims(sent):
    # Asked of every waiting boot under a plan prepared while the claims table was nearly empty,
    # it scanned every claim for every waiting boot: decisions slowed with the backlog.
    from django.test.utils import CaptureQueriesContext

    make_node("compute-1", memory_mb=8192)
    vms = [make_instance(f"vm-{i}", memory_mb=1024) for i in range(2)]
    with CaptureQueriesContext(connection) as queries:
        schedule_instance(str(vms[0].uuid), "req-1")
    (take,) = [q["sql"] for q in queries if "WITH leader AS MATERIALIZED" in q["sql"]]
    assert Allocation._meta.db_table not in take


# Batches of one scheduler process spread over different hosts (batch._NodesInFlight): a batch
# chooses a node another batch of the process is claiming only when no other host is left for a
# request, so two threads that read their shortlists at once do not both go for the same best
# hosts and have one of them go round again.


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
