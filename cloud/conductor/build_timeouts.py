"""Builds that never finished: past KUMO_BUILD_TIMEOUT an instance still building goes to ERROR with
a fault and gives its claim back (beat runs this every minute)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud import events, rpc
from cloud.compute import action_records, boot_metrics, states
from cloud.compute.claims import release
from cloud.compute.models import ComputeNode, Instance, InstanceFault
from compute_agent import messages as msg

log = logging.getLogger(__name__)

BUILD_TIMED_OUT = "Build of instance timed out"


def check_build_timeouts() -> int:
    """Put instances that have been building longer than KUMO_BUILD_TIMEOUT into ERROR.

    The claim is given back only with the domain: when the host still reports one running for the
    instance, the claim stays (the host really carries it) and the host is asked to destroy it, so
    no domain runs without a claim. The host stays recorded, so a later delete reaches it too.
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
            if host:
                rpc.destroy(host, msg.DestroyRequest(request_id=f"req-timeout-{str(uuid)[:8]}",
                                                     instance_uuid=str(uuid)))
            if not _runs_on(host, str(uuid)):
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
            boot_metrics.ended(boot_metrics.TIMED_OUT)
            timed_out += 1
            log.warning("instance %s timed out while building", uuid)
    return timed_out


def _runs_on(host: str | None, instance_uuid: str) -> bool:
    """Whether the host's latest report lists a domain for the instance."""
    node = ComputeNode.objects.filter(host=host).first() if host else None
    return any(d.get("uuid") == instance_uuid for d in (node.domains if node else None) or [])
