"""Server-group rules on plain dataclasses: the hard policies as filters, the soft ones as
weighers. No database."""

from __future__ import annotations

from dataclasses import replace

from cloud.scheduler.filters import run_filters
from cloud.scheduler.filters.ram import RamFilter
from cloud.scheduler.filters.server_group_affinity import ServerGroupAffinityFilter
from cloud.scheduler.filters.server_group_anti_affinity import ServerGroupAntiAffinityFilter
from cloud.scheduler.host_state import HostState, RequestSpec
from cloud.scheduler.weighers import order_hosts
from cloud.scheduler.weighers.ram import FreeRamWeigher
from cloud.scheduler.weighers.server_group_soft_affinity import ServerGroupSoftAffinityWeigher
from cloud.scheduler.weighers.server_group_soft_anti_affinity import (
    ServerGroupSoftAntiAffinityWeigher,
)

SPEC = RequestSpec(instance_uuid="i-1", vcpus=1, memory_mb=512, root_gb=1)


def host(name: str, memory_mb_used: int = 0) -> HostState:
    return HostState(
        host=name, node=name, node_id=0, vcpus=4, memory_mb=4096, local_gb=40,
        memory_mb_used=memory_mb_used,
    )


def in_group(policy: str, *hosts: str, **rules) -> RequestSpec:
    return replace(SPEC, group_policy=policy, group_hosts=tuple(hosts), group_rules=rules)


def names(hosts: list[HostState]) -> list[str]:
    return [h.host for h in hosts]


# --- affinity


def test_affinity_lets_the_first_member_go_anywhere():
    assert ServerGroupAffinityFilter().host_passes(host("c1"), in_group("affinity"))


def test_affinity_keeps_later_members_on_the_host_of_the_first():
    spec = in_group("affinity", "c2")
    assert ServerGroupAffinityFilter().host_passes(host("c2"), spec)
    assert not ServerGroupAffinityFilter().host_passes(host("c1"), spec)


def test_affinity_does_not_constrain_a_server_outside_any_group():
    assert ServerGroupAffinityFilter().host_passes(host("c1"), replace(SPEC, group_hosts=("c2",)))


def test_affinity_ignores_anti_affinity_groups():
    assert ServerGroupAffinityFilter().host_passes(host("c1"), in_group("anti-affinity", "c2"))


# --- anti-affinity


def test_anti_affinity_rejects_a_host_already_holding_a_member():
    spec = in_group("anti-affinity", "c1", "c3")
    assert not ServerGroupAntiAffinityFilter().host_passes(host("c1"), spec)
    assert ServerGroupAntiAffinityFilter().host_passes(host("c2"), spec)


def test_anti_affinity_lets_the_first_member_go_anywhere():
    assert ServerGroupAntiAffinityFilter().host_passes(host("c1"), in_group("anti-affinity"))


def test_anti_affinity_allows_up_to_max_server_per_host_members_on_one_host():
    two_per_host = in_group("anti-affinity", "c1", max_server_per_host=2)
    assert ServerGroupAntiAffinityFilter().host_passes(host("c1"), two_per_host)
    full = in_group("anti-affinity", "c1", "c1", max_server_per_host=2)
    assert not ServerGroupAntiAffinityFilter().host_passes(host("c1"), full)


def test_anti_affinity_does_not_apply_to_soft_anti_affinity_groups():
    assert ServerGroupAntiAffinityFilter().host_passes(
        host("c1"), in_group("soft-anti-affinity", "c1")
    )


def test_a_fourth_anti_affinity_member_on_three_full_hosts_is_refused_by_name():
    hosts = [host("c1"), host("c2"), host("c3")]
    spec = in_group("anti-affinity", "c1", "c2", "c3")
    result = run_filters([RamFilter(), ServerGroupAntiAffinityFilter()], hosts, spec)
    assert result.passed == []
    assert "ServerGroupAntiAffinityFilter removed 3 hosts (c1, c2, c3)." in result.describe()


def test_group_reasons_say_where_the_members_are_and_the_limit():
    full = in_group("anti-affinity", "c1", "c1", max_server_per_host=2)
    assert ServerGroupAntiAffinityFilter().reason(host("c1"), full) == (
        "Anti-affinity: holds 2 members of the group, at most 2 per host")
    assert ServerGroupAntiAffinityFilter().reason(host("c1"), in_group("anti-affinity", "c1")) == (
        "Anti-affinity: holds 1 member of the group, at most 1 per host")
    together = in_group("affinity", "c3", "c2", "c3")
    assert ServerGroupAffinityFilter().reason(host("c1"), together) == (
        "Affinity: the group's other members are on c2, c3")


# --- soft policies


def test_soft_anti_affinity_prefers_the_host_with_fewest_members_over_free_ram():
    # c1 has the most free RAM but already holds two members; c3 holds none.
    hosts = [host("c1", 0), host("c2", 1024), host("c3", 3000)]
    spec = in_group("soft-anti-affinity", "c1", "c1", "c2")
    weighers = [FreeRamWeigher(), ServerGroupSoftAntiAffinityWeigher()]
    assert names(order_hosts(weighers, hosts, spec)) == ["c3", "c2", "c1"]


def test_soft_anti_affinity_leaves_evenly_spread_hosts_to_free_ram():
    hosts = [host("c1", 2000), host("c2", 0), host("c3", 1000)]
    spec = in_group("soft-anti-affinity", "c1", "c2", "c3")
    weighers = [FreeRamWeigher(), ServerGroupSoftAntiAffinityWeigher()]
    assert names(order_hosts(weighers, hosts, spec)) == ["c2", "c3", "c1"]


def test_soft_affinity_prefers_the_host_holding_members_over_free_ram():
    hosts = [host("c1", 0), host("c2", 3000)]
    spec = in_group("soft-affinity", "c2")
    weighers = [FreeRamWeigher(), ServerGroupSoftAffinityWeigher()]
    assert names(order_hosts(weighers, hosts, spec)) == ["c2", "c1"]


def test_soft_weighers_score_every_host_alike_for_a_server_outside_their_policy():
    spec = in_group("anti-affinity", "c1")
    for weigher in (ServerGroupSoftAffinityWeigher(), ServerGroupSoftAntiAffinityWeigher()):
        assert weigher.weigh(host("c1"), spec) == weigher.weigh(host("c2"), spec) == 0.0
