"""The dry run "where would this fit?" on a crafted set of hosts: no database, the filters and
weighers configured in settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cloud.scheduler.explain import explain
from cloud.scheduler.host_state import HostState, RequestSpec
from cloud.scheduler.loader import load_filters, load_weighers

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def host(name: str, **changes) -> HostState:
    """8 vCPUs, 8192 MiB, 100 GB, nothing used, in az1, heard from 5 s ago."""
    fresh = HostState(host=name, node=f"{name}.local", node_id=0, vcpus=8, memory_mb=8192,
                      local_gb=100, last_seen_up=NOW - timedelta(seconds=5), read_at=NOW,
                      availability_zone="az1")
    return replace(fresh, **changes)


# 2 vCPUs, 2048 MiB, 20 GB, in az1
SPEC = RequestSpec(instance_uuid="", vcpus=2, memory_mb=2048, root_gb=20, availability_zone="az1")

HOSTS = [
    host("c1-disabled", disabled=True),
    # 4096 MiB × 1.5 − 4608 used = 1536 free: too little for 2048
    host("c2-full", memory_mb=4096, memory_mb_used=4608, ram_allocation_ratio=1.5),
    host("c3-elsewhere", availability_zone="az2"),
    host("c4-roomy", memory_mb_used=1024),  # 7168 free
    host("c5-busier", memory_mb_used=5120),  # 3072 free
    host("c6-silent", last_seen_up=NOW - timedelta(seconds=300)),
]


@pytest.fixture(autouse=True)
def _down_time(settings):
    settings.KUMO_SERVICE_DOWN_TIME = 60


def test_the_answer_names_the_filter_and_the_reason_in_numbers_for_every_removed_host():
    answer = explain(SPEC, HOSTS, load_filters(), load_weighers())

    removed = {h.host: (h.removed_by, h.reason) for h in answer.hosts if not h.passed}
    assert removed == {
        "c1-disabled": ("ComputeEnabledFilter", "Service: disabled by an operator"),
        "c6-silent": ("ComputeAliveFilter", "Service: last heartbeat 300 s ago, down after 60 s"),
        "c3-elsewhere": ("AvailabilityZoneFilter", "Zone: in az2, not az1"),
        "c2-full": ("RamFilter", "RAM: needs 2048 MiB, 1536 free after the 1.5× ratio"),
    }
    assert answer.considered == 6 and answer.fits


def test_the_hosts_that_pass_come_first_in_the_order_the_scheduler_would_try_them():
    answer = explain(SPEC, HOSTS, load_filters(), load_weighers())

    assert [(h.host, h.rank) for h in answer.passed] == [("c4-roomy", 1), ("c5-busier", 2)]
    # then the removed ones, in the order the filters ran
    assert [h.host for h in answer.hosts] == [
        "c4-roomy", "c5-busier", "c1-disabled", "c6-silent", "c3-elsewhere", "c2-full"]
    best, second = answer.passed
    assert (best.weight, second.weight) == (1.0, 0.0)  # free RAM scaled across the two
    assert best.weights["FreeRamWeigher"] == 1.0
    assert best.free_ram_mb == 7168 and second.free_ram_mb == 3072


def test_the_answer_counts_what_each_filter_removed_in_the_order_they_ran():
    answer = explain(SPEC, HOSTS, load_filters(), load_weighers())
    assert [f for f in answer.filters if f[1]] == [
        ("ComputeEnabledFilter", 1), ("ComputeAliveFilter", 1), ("AvailabilityZoneFilter", 1),
        ("RamFilter", 1)]
    assert answer.filters[0] == ("RequestedDestinationFilter", 0)


def test_when_nothing_fits_each_host_still_says_why_and_later_filters_do_not_run():
    answer = explain(SPEC, HOSTS[:3], load_filters(), load_weighers())
    assert not answer.fits and answer.passed == []
    assert [h.removed_by for h in answer.hosts] == [
        "ComputeEnabledFilter", "AvailabilityZoneFilter", "RamFilter"]
    assert answer.filters[-1] == ("RamFilter", 1)  # nothing left for VcpuFilter and the rest


def test_an_anti_affinity_member_is_kept_off_a_host_of_its_group_with_the_limit_said():
    spec = RequestSpec(instance_uuid="", vcpus=1, memory_mb=512, root_gb=1,
                       group_policy="anti-affinity", group_hosts=("c4-roomy",))
    answer = explain(spec, [host("c4-roomy"), host("c5-busier")], load_filters(),
                     load_weighers())
    assert [h.host for h in answer.passed] == ["c5-busier"]
    assert answer.hosts[1].reason == (
        "Anti-affinity: holds 1 member of the group, at most 1 per host")
