"""kumo_boots_total: each way a boot ends is counted once, by outcome; an unshelve is not a boot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute import states
from cloud.compute.models import Instance
from cloud.conductor.build_timeouts import check_build_timeouts
from cloud.conductor.instance_events import apply_instance_event
from cloud.images.models import Image
from cloud.metrics import exposition
from cloud.scheduler import tasks
from compute_agent import messages as msg
from tests.factories import claim, host_state, make_instance, make_node

from .conftest import Scrape

pytestmark = pytest.mark.django_db


def boots(outcome: str) -> float:
    return Scrape(exposition.render().decode()).value("kumo_boots_total", outcome=outcome)


def spawning(**fields) -> Instance:
    instance = make_instance(**fields)
    assert claim(instance, host_state(make_node("compute-1")))
    return instance


def event(instance: Instance, name: str) -> None:
    apply_instance_event(msg.InstanceEvent(request_id="req-1", instance_uuid=str(instance.uuid),
                                           host="compute-1", event=name, message="boom"))


def test_a_boot_that_spawns_counts_as_active(sent):
    instance = spawning()
    event(instance, msg.EVENT_SPAWNED)
    event(instance, msg.EVENT_SPAWNED)  # redelivered: counted once
    assert boots("active") == 1


def test_an_unshelve_that_spawns_is_not_a_boot(sent):
    image = Image.objects.create(name="shelved", status="active", disk_format="qcow2",
                                 container_format="bare", visibility="private", size=1)
    instance = spawning(vm_state=states.SHELVED_OFFLOADED, shelved_image_id=str(image.id))
    event(instance, msg.EVENT_SPAWNED)
    assert boots("active") == 0


def test_no_valid_host_counts_a_failed_boot_but_not_a_failed_unshelve(sent):
    make_node("small", memory_mb=512)
    tasks.schedule_instance(str(make_instance(memory_mb=4096).uuid), "req-1")
    tasks.schedule_instance(str(make_instance(memory_mb=4096,
                                              vm_state=states.SHELVED_OFFLOADED).uuid), "req-2")
    assert boots("no_valid_host") == 1


def test_a_build_that_fails_on_its_last_try_counts_as_spawn_failed(sent, settings):
    settings.KUMO_MAX_BUILD_RETRIES = 0
    event(spawning(), msg.EVENT_SPAWN_FAILED)
    assert boots("spawn_failed") == 1


def test_a_build_that_fails_and_is_rescheduled_has_not_ended(sent, settings):
    settings.KUMO_MAX_BUILD_RETRIES = 1
    event(spawning(), msg.EVENT_SPAWN_FAILED)
    assert boots("spawn_failed") == 0


def test_a_build_that_times_out_counts_as_timed_out(settings):
    settings.KUMO_BUILD_TIMEOUT = 600
    instance = make_instance()
    Instance.objects.filter(pk=instance.pk).update(
        created_at=timezone.now() - timedelta(seconds=601))
    assert check_build_timeouts() == 1
    assert boots("timed_out") == 1
