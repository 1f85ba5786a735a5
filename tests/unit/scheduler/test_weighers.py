"""Weighing and ordering hosts, on plain dataclasses: no database."""

from __future__ import annotations

from cloud.scheduler.host_state import HostState, RequestSpec
from cloud.scheduler.weighers import order_hosts
from cloud.scheduler.weighers.ram import FreeRamWeigher

SPEC = RequestSpec(instance_uuid="i-1", vcpus=1, memory_mb=512, root_gb=1)


def host(name: str, memory_mb_used: int = 0, ram_ratio: float = 1.0) -> HostState:
    return HostState(
        host=name,
        node=name,
        node_id=0,
        vcpus=4,
        memory_mb=4096,
        local_gb=40,
        memory_mb_used=memory_mb_used,
        ram_allocation_ratio=ram_ratio,
    )


def test_free_ram_weigher_scores_free_ram_after_the_allocation_ratio():
    assert FreeRamWeigher().weigh(host("a", memory_mb_used=1000, ram_ratio=1.5), SPEC) == 5144


def test_prefers_the_host_with_more_free_ram():
    hosts = [host("busy", 3000), host("idle", 0), host("half", 2048)]
    assert [h.host for h in order_hosts([FreeRamWeigher()], hosts, SPEC)] == [
        "idle",
        "half",
        "busy",
    ]


def test_breaks_ties_by_host_name_so_the_order_is_stable():
    hosts = [host("b"), host("c"), host("a")]
    assert [h.host for h in order_hosts([FreeRamWeigher()], hosts, SPEC)] == ["a", "b", "c"]


def test_a_negative_multiplier_packs_instead_of_spreading():
    class PackByRam(FreeRamWeigher):
        multiplier = -1.0

    hosts = [host("idle", 0), host("busy", 3000)]
    assert [h.host for h in order_hosts([PackByRam()], hosts, SPEC)] == ["busy", "idle"]


def test_orders_no_hosts_as_no_hosts():
    assert order_hosts([FreeRamWeigher()], [], SPEC) == []
