"""The conductor's volume deadline sweep first asks whether anything is under way at all
(volume_events.check_deadlines: most sweeps find nothing, and skip its six reads). Each state it
handles must still be found when it is the only one waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.conductor import volume_events
from cloud.volumes import statuses, volumes
from cloud.volumes.models import Volume, VolumeSnapshot

from .conftest import created


@pytest.mark.parametrize("status, done", [
    (statuses.CREATING, "volumes failed"),
    (statuses.DOWNLOADING, "volumes failed"),
    (statuses.EXTENDING, "extends failed"),
    (statuses.UPLOADING, "uploads ended"),
    (statuses.DELETING, "deletes re-sent"),
])
def test_a_volume_alone_in_a_waiting_state_is_found(people, volume_host, status, done):
    _, ctx = people["member"]
    volume = volumes.create_volume(ctx, {"size": 1})
    created(volume, 1)
    Volume.objects.filter(pk=volume.pk).update(
        status=status, updated_at=timezone.now() - timedelta(hours=1))

    assert volume_events.check_deadlines() == {done: 1}


@pytest.mark.parametrize("status, done", [
    (statuses.CREATING, "snapshots failed"),
    (statuses.DELETING, "snapshot deletes re-sent"),
])
def test_a_snapshot_alone_in_a_waiting_state_is_found(people, volume_host, status, done):
    _, ctx = people["member"]
    volume = volumes.create_volume(ctx, {"size": 1})
    created(volume, 1)
    VolumeSnapshot.objects.create(volume=volume, project_id=volume.project_id, size=1,
                                  status=status)
    VolumeSnapshot.objects.update(updated_at=timezone.now() - timedelta(hours=1))

    assert volume_events.check_deadlines() == {done: 1}


def test_nothing_waiting_costs_the_sweep_two_small_reads(people, volume_host,
                                                         django_assert_num_queries):
    _, ctx = people["member"]
    created(volumes.create_volume(ctx, {"size": 1}), 1)  # available: nothing to wait for

    with django_assert_num_queries(2):
        assert volume_events.check_deadlines() == {}
