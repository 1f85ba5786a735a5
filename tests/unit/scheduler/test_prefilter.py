"""The shortlist (cloud/scheduler/prefilter.py) keeps out only hosts a filter would remove, and
puts the others in the order the weighers give, so a decision chooses what reading every host
would have chosen."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute.models import Aggregate, AggregateHost
from cloud.scheduler import prefilter
from cloud.scheduler.filters import run_filters
from cloud.scheduler.host_state import RequestSpec, load_host_states
from cloud.scheduler.loader import load_filters, load_weighers
from cloud.scheduler.weighers import order_hosts
from tests.factories import make_node

pytestmark = pytest.mark.django_db

SPEC = RequestSpec(instance_uuid="00000000-0000-0000-0000-000000000001", vcpus=2,
                   memory_mb=2048, root_gb=20)


def _shortlist(spec: RequestSpec = SPEC, weighers=None) -> list[str]:
    weighers = load_weighers() if weighers is None else weighers
    hosts = prefilter.load_candidates(load_filters(), weighers, spec, timezone.now())
    return [h.host for h in hosts]


def _everyone_would_try(spec: RequestSpec = SPEC) -> list[str]:
    passed = run_filters(load_filters(), load_host_states(), spec).passed
    return [h.host for h in order_hosts(load_weighers(), passed, spec)]


@pytest.fixture
def hosts():
    make_node("roomy", memory_mb=16384, vcpus=8, local_gb=100)
    make_node("medium", memory_mb=8192, vcpus=8, local_gb=100)
    make_node("tie-b", memory_mb=4096, vcpus=8, local_gb=100)
    make_node("tie-a", memory_mb=4096, vcpus=8, local_gb=100)
    make_node("no-ram", memory_mb=1024, vcpus=8, local_gb=100)
    make_node("no-cpu", memory_mb=16384, vcpus=1, local_gb=100)
    make_node("no-disk", memory_mb=16384, vcpus=8, local_gb=10)
    make_node("disabled", memory_mb=32768, vcpus=8, local_gb=100, disabled=True)
    make_node("silent", memory_mb=32768, vcpus=8, local_gb=100,
              last_seen_up=timezone.now() - timedelta(hours=1))
    make_node("overcommitted", memory_mb=4096, vcpus=2, cpu_ratio=4.0, ram_ratio=1.5,
              local_gb=100)
    edge = Aggregate.objects.create(name="edge", availability_zone="edge")
    AggregateHost.objects.create(aggregate=edge, host="medium")


def test_the_shortlist_is_the_order_every_host_would_be_tried_in(hosts):
    assert _shortlist() == _everyone_would_try()
    assert _shortlist()[:4] == ["roomy", "medium", "overcommitted", "tie-a"]


def test_only_the_best_few_are_read(hosts, monkeypatch):
    monkeypatch.setattr(prefilter, "SHORTLIST_SIZE", 2)
    assert _shortlist() == ["roomy", "medium"]


def test_a_zone_keeps_its_hosts_and_the_default_zone_the_others(hosts):
    assert _shortlist(dataclasses.replace(SPEC, availability_zone="edge")) == ["medium"]
    nova = _shortlist(dataclasses.replace(SPEC, availability_zone="nova"))
    assert "medium" not in nova and nova == _everyone_would_try(
        dataclasses.replace(SPEC, availability_zone="nova"))


def test_tried_hosts_and_a_requested_destination_are_kept_out_or_in(hosts):
    assert "roomy" not in _shortlist(dataclasses.replace(SPEC, ignore_hosts=frozenset({"roomy"})))
    assert _shortlist(dataclasses.replace(SPEC, requested_host="tie-b")) == ["tie-b"]
    assert _shortlist(dataclasses.replace(SPEC, requested_node="tie-b.local")) == ["tie-b"]


def test_a_forced_destination_skips_the_other_filters_as_the_filters_do(hosts):
    forced = dataclasses.replace(SPEC, requested_host="no-ram", force_destination=True)
    assert _shortlist(forced) == ["no-ram"]


def test_an_affinity_group_with_members_placed_keeps_their_hosts(hosts):
    group = dataclasses.replace(SPEC, group_policy="affinity", group_hosts=("tie-a", "tie-a"))
    assert _shortlist(group) == ["tie-a"]


def test_a_weigher_it_cannot_order_by_means_every_candidate_is_read(hosts, monkeypatch):
    class Whimsical:
        multiplier = 1.0

        def weigh(self, host, spec):
            return len(host.host)

    monkeypatch.setattr(prefilter, "SHORTLIST_SIZE", 2)
    assert sorted(_shortlist(weighers=[Whimsical()])) == sorted(_everyone_would_try())


def test_a_soft_affinity_group_orders_in_python_not_sql():
    weighers = load_weighers()
    assert prefilter.sql_order(weighers, SPEC) is not None
    assert prefilter.sql_order(weighers, dataclasses.replace(
        SPEC, group_policy="soft-affinity", group_hosts=("a",))) is None
