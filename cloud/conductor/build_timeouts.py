"""Builds that never finished: past KUMO_BUILD_TIMEOUT an instance still building goes to ERROR with
a fault and gives its claim back (beat runs this every minute)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud import events
from cloud.compute import action_records, states
from cloud.compute.claims import release
from cloud.compute.models import Instance, InstanceFault

log = logging.getLogger(__name__)

BUILD_TIMED_OUT = "Build of instance timed out"


def check_build_timeouts() -> int:
    """Put instances that have been building longer than KUMO_BUILD_TIMEOUT into ERROR.

    The host stays recorded, so a later delete still reaches any domain the build left behind.
    Returns how many instances timed out.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.KUMO_BUILD_TIMEOUT)
    # A delete in progress is not a stuck build: its destroy is on the way.
    stuck = Instance.objects.filter(
        deleted=False, vm_state=states.BUILDING, created_at__lt=cutoff
    ).exclude(task_state=states.DELETING)
    timed_out = 0
    for uuid, host in stuck.values_list("uuid", "host"):
        with transaction.atomic():
            if not stuck.filter(uuid=uuid).update(
                vm_state=states.ERROR, task_state=None, updated_at=timezone.now()
            ):
                continue
            events.instance_changed(uuid)
            release(str(uuid))
            InstanceFault.objects.create(
                instance_id=uuid, code=500, message=BUILD_TIMED_OUT, host=host or ""
            )
            action_records.record_event(
                str(uuid),
                action_records.EVENT_BUILD_TIMEOUT,
                action_records.ERROR,
                host=host,
                details=BUILD_TIMED_OUT,
                finish_action=True,
            )
            timed_out += 1
            log.warning("instance %s timed out while building", uuid)
    return timed_out
