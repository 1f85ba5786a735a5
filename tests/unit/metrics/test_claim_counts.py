"""Claims and their conflicts, as /metrics counts them: every attempt by kind, every refusal by
the reason its conditional writes gave."""

from __future__ import annotations

import pytest

from cloud.compute import claims, states
from cloud.compute.models import Instance, Migration
from cloud.metrics import exposition
from tests.factories import claim, host_state, make_instance, make_node

from .conftest import Scrape

pytestmark = pytest.mark.django_db


def counted() -> Scrape:
    return Scrape(exposition.render().decode())


def test_a_claim_that_lands_counts_as_an_attempt_without_a_conflict():
    assert claim(make_instance(), host_state(make_node()))
    after = counted()
    assert after.value("kumo_claims_total", kind="instance") == 1
    assert after.value("kumo_claim_conflicts_total") == 0


def test_a_full_node_counts_a_no_room_conflict():
    node = make_node(memory_mb=1024)
    assert claim(make_instance(memory_mb=1024), host_state(node))
    assert not claim(make_instance(memory_mb=1024), host_state(node))
    after = counted()
    assert after.value("kumo_claims_total", kind="instance") == 2
    assert after.value("kumo_claim_conflicts_total", kind="instance", reason="no_room") == 1


def test_an_instance_placed_meanwhile_counts_as_already_claimed_or_changed():
    node, other = make_node(), make_node("compute-2")
    instance = make_instance()
    assert claim(instance, host_state(node))
    Instance.objects.filter(pk=instance.pk).update(host=None, task_state=states.SCHEDULING)
    assert not claim(instance, host_state(other))  # its allocation exists: already claimed

    gone = make_instance()
    Instance.objects.filter(pk=gone.pk).update(deleted=True)
    assert not claim(gone, host_state(other))

    after = counted()
    assert after.value("kumo_claim_conflicts_total", reason="already_claimed") == 1
    assert after.value("kumo_claim_conflicts_total", reason="instance_changed") == 1


def test_a_resize_claim_counts_growth_without_room_and_a_missing_claim():
    node = make_node(vcpus=2)
    instance = make_instance(vcpus=1, memory_mb=512, root_gb=1)
    assert claim(instance, host_state(node))
    assert claims.resize_claim(str(instance.pk), 2, 512, 1)
    assert not claims.resize_claim(str(instance.pk), 3, 512, 1)
    assert not claims.resize_claim(str(make_instance().pk), 1, 512, 1)

    after = counted()
    assert after.value("kumo_claims_total", kind="resize") == 3
    assert after.value("kumo_claim_conflicts_total", kind="resize", reason="no_room") == 1
    assert after.value("kumo_claim_conflicts_total", kind="resize", reason="no_claim") == 1


def test_a_move_destination_without_room_counts_as_a_move_conflict():
    source, full = make_node(), make_node("compute-2", memory_mb=512)
    instance = make_instance(memory_mb=1024, root_gb=1)
    assert claim(instance, host_state(source))
    migration = Migration.objects.create(
        instance=instance, migration_type="migration", status=states.MIGRATION_RUNNING,
        source_compute="compute-1", source_node="compute-1.local", dest_compute="compute-2")
    assert not claims.claim_destination(instance, migration, host="compute-2", node_id=full.pk,
                                        vcpus=1, memory_mb=1024, disk_gb=1)
    after = counted()
    assert after.value("kumo_claims_total", kind="move") == 1
    assert after.value("kumo_claim_conflicts_total", kind="move", reason="no_room") == 1
