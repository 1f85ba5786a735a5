"""The availability-zone rule on plain dataclasses. No database."""

from __future__ import annotations

from dataclasses import replace

from cloud.scheduler.filters import run_filters
from cloud.scheduler.filters.availability_zone import AvailabilityZoneFilter
from cloud.scheduler.host_state import HostState, RequestSpec

SPEC = RequestSpec(instance_uuid="i-1", vcpus=1, memory_mb=512, root_gb=1)


def host(name: str, zone: str | None = None) -> HostState:
    state = HostState(host=name, node=name, node_id=0, vcpus=4, memory_mb=4096, local_gb=40)
    return replace(state, availability_zone=zone) if zone else state


def test_a_host_in_no_zoned_aggregate_is_in_the_default_zone_nova():
    assert host("c1").availability_zone == "nova"


def test_a_request_without_a_zone_may_land_in_any_zone():
    assert AvailabilityZoneFilter().host_passes(host("c1", "az1"), SPEC)
    assert AvailabilityZoneFilter().host_passes(host("c2"), SPEC)


def test_a_request_for_a_zone_lands_only_on_hosts_of_that_zone():
    hosts = [host("c1"), host("c2", "az2"), host("c3", "az1")]
    result = run_filters([AvailabilityZoneFilter()], hosts, replace(SPEC, availability_zone="az1"))
    assert [h.host for h in result.passed] == ["c3"]
    assert result.removed == [("AvailabilityZoneFilter", ["c1", "c2"])]


def test_asking_for_nova_excludes_hosts_moved_into_another_zone():
    spec = replace(SPEC, availability_zone="nova")
    assert AvailabilityZoneFilter().host_passes(host("c1"), spec)
    assert not AvailabilityZoneFilter().host_passes(host("c3", "az1"), spec)
