"""Shelve, shelve-offload and unshelve (operations "shelve", "shelve_offload", "unshelve").

Shelving saves the server's disk to an image named "<name>-shelved" (Instance.shelved_image_id)
and shuts it down: SHELVED, still on its host. With KUMO_SHELVED_OFFLOAD_TIME 0 (Nova's
shelved_offload_time; the default) the host then removes it at once and the claim is released:
SHELVED_OFFLOADED, no host. A positive value offloads them that many seconds after they were
shelved (the reconciler's sweep, offload_due); -1 keeps them on their hosts until shelveOffload.

Unshelving a server still on its host starts it there. An offloaded one goes through the
scheduler like a build (scheduling, then spawning; the zone and, for admins, the host it asks
for narrow the choice) and boots from its shelve image, which is deleted once it runs
(cloud/conductor/operation_events.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud import errors, rpc
from cloud.identity.context import RequestContext
from cloud.images import storage
from cloud.images.models import Image
from compute_agent import messages as msg

from . import availability_zones, server_volumes, states
from .destinations import check_destination
from .disk_images import disk_image, upload_request
from .models import Instance
from .operations import REGISTRY, runs
from .transitions import begin, ensure_host_up


def offload_at_once() -> bool:
    return settings.KUMO_SHELVED_OFFLOAD_TIME == 0


@runs("shelve")
def shelve(ctx: RequestContext, instance: Instance) -> None:
    """Save the disk to "<name>-shelved" and shut the server down (and offload it, see above).
    A volume-backed server has no disk to save: its volumes stay attached to it, and an unshelve
    boots it from them wherever it is scheduled."""
    if server_volumes.boots_from_volume(instance):
        with transaction.atomic():
            row = begin(ctx, instance, REGISTRY["shelve"], shelved_image_id="")
            rpc.to_host(row.host, msg.TASK_SHELVE, msg.SnapshotRequest(
                request_id=ctx.request_id, instance_uuid=str(row.uuid), image_id="",
                upload_url="", offload=offload_at_once()))
        return
    with transaction.atomic():
        image = disk_image(ctx, instance, f"{instance.display_name}-shelved",
                           image_type="snapshot")
        row = begin(ctx, instance, REGISTRY["shelve"], shelved_image_id=str(image.id))
        rpc.to_host(row.host, msg.TASK_SHELVE, upload_request(
            ctx, row, image, offload=offload_at_once()))


def offload_due() -> int:
    """Offload the servers shelved on their hosts for longer than a positive
    KUMO_SHELVED_OFFLOAD_TIME (Nova's periodic _poll_shelved_instances); how many were asked. A
    server whose host is silent, or that changed meanwhile, waits for the next pass. Run by the
    reconciler's sweep."""
    delay = settings.KUMO_SHELVED_OFFLOAD_TIME
    if delay <= 0:
        return 0
    due = Instance.objects.filter(
        deleted=False, vm_state=states.SHELVED, task_state__isnull=True, host__isnull=False,
        updated_at__lt=timezone.now() - timedelta(seconds=delay))
    asked = 0
    for instance in due:
        # As whom: the server's own user, with the operator's role the offload needs.
        ctx = RequestContext(user_id=str(instance.user_id), user_name="",
                             project_id=str(instance.project_id), project_name=None,
                             roles=("admin",), request_id=f"req-offload-{str(instance.uuid)[:8]}")
        try:
            with transaction.atomic():
                row = begin(ctx, instance, REGISTRY["shelve_offload"])
                rpc.to_host(row.host, msg.TASK_SHELVE_OFFLOAD, msg.PowerRequest(
                    request_id=ctx.request_id, instance_uuid=str(row.uuid)))
        except errors.Conflict:
            continue
        asked += 1
    return asked


@dataclass(frozen=True)
class UnshelveTo:
    """Where an offloaded server may boot again (2.77 availability_zone, 2.91 host and
    availability_zone null: unpinned). Fields left unset keep what the server had."""

    zone: str | None = None
    unpin_zone: bool = False
    host: str | None = None

    def __bool__(self) -> bool:
        return bool(self.zone or self.unpin_zone or self.host)


@runs("unshelve")
def unshelve(
    ctx: RequestContext, instance: Instance, destination: UnshelveTo | None = None
) -> None:
    destination = destination or UnshelveTo()
    if instance.vm_state != states.SHELVED_OFFLOADED:
        if destination:
            # As Nova: only an offloaded server can be sent somewhere else.
            raise errors.BadRequest(
                f"The unshelve action on instance {instance.uuid} in vm_state "
                f"{instance.vm_state} cannot choose an availability zone or a host: only a "
                "shelved offloaded server can.")
        ensure_host_up(REGISTRY["unshelve"], instance)
        with transaction.atomic():
            row = begin(ctx, instance, REGISTRY["unshelve"])
            rpc.to_host(row.host, msg.TASK_UNSHELVE, msg.PowerRequest(
                request_id=ctx.request_id, instance_uuid=str(row.uuid)))
        return
    changes: dict[str, str | None] = {}
    if destination.zone:
        changes["availability_zone"] = availability_zones.validate_requested_zone(
            ctx, destination.zone)
    elif destination.unpin_zone:
        changes["availability_zone"] = None
    if destination.host:
        check_destination(destination.host, None)
        changes["requested_host"] = destination.host
        changes["requested_node"] = None
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["unshelve_offloaded"], retries=0, tried_hosts=[],
                    **changes)
        rpc.schedule_instance(str(row.uuid), ctx.request_id)


def drop_shelved_image(instance_uuid: str) -> dict[str, str]:
    """The server runs again: its shelve image is no longer needed and goes, as in Nova. Inside
    the caller's transaction; the changes for the server's row."""
    image_id = (Instance.objects.filter(pk=instance_uuid)
                .values_list("shelved_image_id", flat=True).first())
    if not image_id:
        return {}
    Image.objects.filter(pk=image_id).delete()
    transaction.on_commit(lambda: storage.delete(image_id))
    return {"shelved_image_id": ""}
