"""Each filter's rule, on plain dataclasses: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.utils.module_loading import import_string

from cloud.scheduler.filters import REASONS_PER_FILTER, run_filters
from cloud.scheduler.filters.alive import ComputeAliveFilter
from cloud.scheduler.filters.availability_zone import AvailabilityZoneFilter
from cloud.scheduler.filters.disk import DiskFilter
from cloud.scheduler.filters.enabled import ComputeEnabledFilter
from cloud.scheduler.filters.ram import RamFilter
from cloud.scheduler.filters.retry import RetryFilter
from cloud.scheduler.filters.vcpu import VcpuFilter
from cloud.scheduler.host_state import HostState, RequestSpec

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

HOST = HostState(
    host="compute-1",
    node="compute-1.local",
    node_id=1,
    vcpus=4,
    memory_mb=4096,
    local_gb=40,
    last_seen_up=NOW - timedelta(seconds=5),
    read_at=NOW,
)
SPEC = RequestSpec(instance_uuid="i-1", vcpus=1, memory_mb=1024, root_gb=10)


def host(**changes) -> HostState:
    return replace(HOST, **changes)


def spec(**changes) -> RequestSpec:
    return replace(SPEC, **changes)


def test_enabled_filter_passes_an_enabled_host():
    assert ComputeEnabledFilter().host_passes(host(), SPEC)


def test_enabled_filter_rejects_a_disabled_host():
    assert not ComputeEnabledFilter().host_passes(host(disabled=True), SPEC)


@pytest.fixture(autouse=True)
def _down_time(settings):
    settings.KUMO_SERVICE_DOWN_TIME = 60


def test_alive_filter_passes_a_host_seen_within_the_down_time():
    assert ComputeAliveFilter().host_passes(host(), SPEC)


def test_alive_filter_passes_a_host_seen_exactly_at_the_down_time():
    seen = host(last_seen_up=NOW - timedelta(seconds=60))
    assert ComputeAliveFilter().host_passes(seen, SPEC)


def test_alive_filter_rejects_a_host_silent_for_longer_than_the_down_time():
    silent = host(last_seen_up=NOW - timedelta(seconds=61))
    assert not ComputeAliveFilter().host_passes(silent, SPEC)


def test_alive_filter_rejects_a_host_never_seen():
    assert not ComputeAliveFilter().host_passes(host(last_seen_up=None), SPEC)


def test_alive_filter_rejects_a_forced_down_host_even_if_recently_seen():
    assert not ComputeAliveFilter().host_passes(host(forced_down=True), SPEC)


def test_alive_filter_takes_its_down_time_from_settings(settings):
    settings.KUMO_SERVICE_DOWN_TIME = 3
    assert not ComputeAliveFilter().host_passes(host(), SPEC)


def test_retry_filter_rejects_a_host_a_failed_build_already_tried():
    assert not RetryFilter().host_passes(host(), spec(ignore_hosts=frozenset({"compute-1"})))


def test_retry_filter_passes_a_host_not_yet_tried():
    assert RetryFilter().host_passes(host(), spec(ignore_hosts=frozenset({"compute-2"})))


def test_ram_filter_passes_host_with_exactly_the_requested_free_ram():
    assert RamFilter().host_passes(host(memory_mb_used=3072), SPEC)


def test_ram_filter_rejects_host_without_free_ram():
    assert not RamFilter().host_passes(host(memory_mb_used=3073), SPEC)


def test_ram_filter_counts_the_allocation_ratio():
    overcommitted = host(memory_mb_used=4096, ram_allocation_ratio=1.5)
    assert RamFilter().host_passes(overcommitted, SPEC)
    assert not RamFilter().host_passes(overcommitted, spec(memory_mb=2049))


def test_vcpu_filter_rejects_host_without_free_vcpus():
    assert not VcpuFilter().host_passes(host(vcpus_used=4), SPEC)


def test_vcpu_filter_counts_the_allocation_ratio():
    assert VcpuFilter().host_passes(host(vcpus_used=15, cpu_allocation_ratio=4.0), SPEC)
    assert not VcpuFilter().host_passes(host(vcpus_used=16, cpu_allocation_ratio=4.0), SPEC)


def test_disk_filter_asks_for_root_plus_ephemeral_disk():
    roomy_enough = host(local_gb_used=25)
    assert DiskFilter().host_passes(roomy_enough, spec(root_gb=10, ephemeral_gb=5))
    assert not DiskFilter().host_passes(roomy_enough, spec(root_gb=10, ephemeral_gb=6))


def test_disk_filter_counts_the_allocation_ratio():
    assert DiskFilter().host_passes(host(local_gb_used=70, disk_allocation_ratio=2.0), SPEC)


def test_run_filters_records_which_filter_removed_which_hosts():
    hosts = [
        host(host="compute-1", memory_mb_used=4000),
        host(host="compute-2", memory_mb_used=4000),
        host(host="compute-3", vcpus_used=4),
        host(host="compute-4"),
    ]
    result = run_filters([ComputeEnabledFilter(), RamFilter(), VcpuFilter()], hosts, SPEC)
    assert [h.host for h in result.passed] == ["compute-4"]
    assert result.removed == [
        ("ComputeEnabledFilter", []),
        ("RamFilter", ["compute-1", "compute-2"]),
        ("VcpuFilter", ["compute-3"]),
    ]


def test_run_filters_stops_once_no_host_is_left():
    result = run_filters([RamFilter(), VcpuFilter()], [host(memory_mb_used=4096)], SPEC)
    assert result.passed == []
    assert result.removed == [("RamFilter", ["compute-1"])]


def test_description_names_each_filter_with_the_hosts_it_removed_and_why_in_numbers():
    hosts = [host(host="compute-1", disabled=True), host(host="compute-2", memory_mb_used=3584)]
    text = run_filters([ComputeEnabledFilter(), RamFilter()], hosts, SPEC).describe()
    assert text == (
        "2 hosts considered.\n"
        "ComputeEnabledFilter removed 1 host (compute-1).\n"
        "  compute-1: Service: disabled by an operator\n"
        "RamFilter removed 1 host (compute-2).\n"
        "  compute-2: RAM: needs 1024 MiB, 512 free after the 1.0× ratio"
    )


def test_description_words_the_reasons_of_only_the_first_hosts_of_each_filter():
    hosts = [host(host=f"compute-{i:02}", disabled=True) for i in range(REASONS_PER_FILTER + 3)]
    lines = run_filters([ComputeEnabledFilter()], hosts, SPEC).describe().splitlines()
    assert "compute-12" in lines[1]  # every removed host is still named
    assert len([line for line in lines if line.startswith("  compute-")]) == REASONS_PER_FILTER
    assert lines[-1] == "  … and 3 more."


# --- each filter's reason, in numbers, for a host it rejects

def test_ram_reason_gives_the_need_and_what_is_free_after_the_ratio():
    full = host(memory_mb=4096, memory_mb_used=4608, ram_allocation_ratio=1.5)
    assert not RamFilter().host_passes(full, spec(memory_mb=2048))
    assert RamFilter().reason(full, spec(memory_mb=2048)) == (
        "RAM: needs 2048 MiB, 1536 free after the 1.5× ratio")


def test_vcpu_reason_gives_the_need_and_what_is_free_after_the_ratio():
    busy = host(vcpus_used=15, cpu_allocation_ratio=4.0)
    assert VcpuFilter().reason(busy, spec(vcpus=2)) == "vCPUs: needs 2, 1 free after the 4.0× ratio"


def test_disk_reason_counts_root_and_ephemeral_disk():
    assert DiskFilter().reason(host(local_gb_used=35), spec(root_gb=10, ephemeral_gb=5)) == (
        "Disk: needs 15 GB, 5 free after the 1.0× ratio")


def test_alive_reason_gives_the_heartbeat_age_and_the_down_time():
    silent = host(last_seen_up=NOW - timedelta(seconds=95))
    assert ComputeAliveFilter().reason(silent, SPEC) == (
        "Service: last heartbeat 95 s ago, down after 60 s")
    assert ComputeAliveFilter().reason(host(forced_down=True), SPEC) == "Service: forced down"
    assert ComputeAliveFilter().reason(host(last_seen_up=None), SPEC) == (
        "Service: no heartbeat yet")


def test_retry_and_zone_reasons_name_what_stood_in_the_way():
    tried = spec(ignore_hosts=frozenset({"compute-1"}))
    assert RetryFilter().reason(host(), tried) == (
        "Retry: a failed build of this server already tried it")
    assert AvailabilityZoneFilter().reason(host(availability_zone="az2"),
                                           spec(availability_zone="az1")) == "Zone: in az2, not az1"


def test_every_configured_filter_explains_itself(settings):
    for path in settings.KUMO_SCHEDULER_FILTERS:
        assert callable(getattr(import_string(path), "reason", None)), path


def test_description_says_when_no_compute_hosts_are_registered():
    assert run_filters([RamFilter()], [], SPEC).describe() == "no compute hosts are registered"
