"""Server groups and zones through the real scheduler path: request spec, filters, claims."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from cloud.compute import states
from cloud.compute.models import (
    Aggregate,
    AggregateHost,
    Allocation,
    Instance,
    ServerGroup,
    ServerGroupMember,
)
from cloud.scheduler.host_state import load_host_states, request_spec_for
from cloud.scheduler.manager import schedule_instance
from tests.factories import claim, host_state, make_instance, make_node, owner

pytestmark = pytest.mark.django_db


def make_group(policy: str, **rules) -> ServerGroup:
    project, user = owner()
    return ServerGroup.objects.create(
        name=f"g-{policy}", project=project, user=user, policy=policy, rules=rules
    )


def member(group: ServerGroup, name: str, **fields) -> Instance:
    instance = make_instance(name, **fields)
    ServerGroupMember.objects.create(group=group, instance=instance)
    return instance


def placed(group: ServerGroup, name: str, host: str, **fields) -> Instance:
    return member(group, name, host=host, node=f"{host}.local", task_state=None,
                  vm_state=states.ACTIVE, **fields)


@pytest.fixture
def run(sent):
    def run(instance: Instance) -> Instance:
        schedule_instance(str(instance.uuid), "req-1")
        instance.refresh_from_db()
        return instance

    return run


def test_request_spec_knows_the_group_policy_and_where_the_other_live_members_are():
    group = make_group("anti-affinity", max_server_per_host=2)
    placed(group, "a", "c1")
    placed(group, "b", "c1")
    placed(group, "gone", "c2", deleted=True)
    member(group, "unplaced")
    me = member(group, "me")

    spec = request_spec_for(me)

    assert spec.group_policy == "anti-affinity"
    assert spec.group_rules == {"max_server_per_host": 2}
    assert spec.group_hosts == ("c1", "c1")


def test_request_spec_of_a_server_outside_any_group_has_no_group():
    spec = request_spec_for(make_instance("loner"))
    assert (spec.group_policy, spec.group_hosts) == (None, ())


def test_host_states_carry_the_zone_of_their_aggregate_or_nova():
    make_node("c1")
    make_node("c2")
    zoned = Aggregate.objects.create(name="agg-az1", availability_zone="az1")
    AggregateHost.objects.create(aggregate=zoned, host="c2")
    plain = Aggregate.objects.create(name="agg-plain")
    AggregateHost.objects.create(aggregate=plain, host="c1")

    zones = {h.host: h.availability_zone for h in load_host_states()}

    assert zones == {"c1": "nova", "c2": "az1"}


def test_an_anti_affinity_member_avoids_the_roomier_host_holding_another_member(run, sent):
    make_node("c1", memory_mb=8192)
    make_node("c2", memory_mb=2048)
    group = make_group("anti-affinity")
    placed(group, "first", "c1")

    assert run(member(group, "second")).host == "c2"


def test_an_affinity_member_joins_the_first_even_on_the_smaller_host(run, sent):
    make_node("c1", memory_mb=8192)
    make_node("c2", memory_mb=2048)
    group = make_group("affinity")
    placed(group, "first", "c2")

    assert run(member(group, "second")).host == "c2"


def test_a_deleted_member_no_longer_keeps_others_off_its_host(run, sent):
    make_node("c1")
    group = make_group("anti-affinity")
    placed(group, "old", "c1", deleted=True)

    assert run(member(group, "new")).host == "c1"


def test_an_anti_affinity_member_with_every_host_taken_errors_naming_the_filter(run, sent):
    make_node("c1")
    make_node("c2")
    group = make_group("anti-affinity")
    placed(group, "a", "c1")
    placed(group, "b", "c2")

    instance = run(member(group, "c"))

    assert instance.vm_state == states.ERROR
    fault = instance.faults.get()
    assert "ServerGroupAntiAffinityFilter removed 2 of 2 hosts" in fault.message
    assert "ServerGroupAntiAffinityFilter removed 2 hosts (c1, c2)." in fault.details
    assert sent == []


def test_a_server_asking_for_a_zone_lands_on_a_host_of_that_zone(run, sent):
    make_node("c1", memory_mb=8192)
    make_node("c3", memory_mb=2048)
    zoned = Aggregate.objects.create(name="agg-az1", availability_zone="az1")
    AggregateHost.objects.create(aggregate=zoned, host="c3")

    assert run(make_instance("zoned", availability_zone="az1")).host == "c3"
    assert run(make_instance("anywhere")).host == "c1"


def test_a_claim_on_a_host_the_group_took_meanwhile_is_refused_and_changes_nothing():
    # The filters ran before the first member landed on c1; the claim re-checks under the lock.
    node = make_node("c1")
    group = make_group("anti-affinity")
    stale = host_state(node)
    placed(group, "first", "c1")
    second = member(group, "second")

    assert not claim(second, stale)

    node.refresh_from_db()
    assert node.memory_mb_used == 0
    assert not Allocation.objects.filter(instance=second).exists()
    second.refresh_from_db()
    assert (second.host, second.task_state) == (None, states.SCHEDULING)


def test_a_claim_away_from_an_affinity_group_host_is_refused():
    make_node("c1")
    other = make_node("c2")
    group = make_group("affinity")
    placed(group, "first", "c1")

    assert not claim(member(group, "second"), host_state(other))


def test_a_claim_for_a_soft_anti_affinity_member_may_share_a_host():
    node = make_node("c1")
    group = make_group("soft-anti-affinity")
    placed(group, "first", "c1")

    assert claim(member(group, "second"), host_state(node))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (set DATABASE_URL=postgres://…): SQLite serialises every writer",
)
def test_members_of_an_anti_affinity_group_claiming_one_host_at_once_leave_one_winner():
    node = make_node("c1", vcpus=16, memory_mb=16384, local_gb=400)
    group = make_group("anti-affinity")
    members = [member(group, f"m{i}") for i in range(6)]
    state = host_state(node)
    start = threading.Barrier(len(members))
    results: list[bool] = []

    def claim_one(instance: Instance) -> None:
        try:
            start.wait()
            results.append(claim(instance, state))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_one, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [False] * 5 + [True]
    assert Instance.objects.filter(host="c1").count() == 1
    assert Allocation.objects.count() == 1
