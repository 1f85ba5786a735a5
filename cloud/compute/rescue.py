"""Rescue and unrescue (operations "rescue" and "unrescue").

A rescued server boots from a rescue image — the one asked for (`rescue_image_ref`), or its own
image as Nova's default — with its own root disk attached second, so a broken guest can be
repaired from outside; unrescue boots it from its own disk again. Both run on the server's host
(compute_agent.guest_tasks); the host's report ends them (cloud/conductor/operation_events.py).
"""

from __future__ import annotations

from django.db import transaction

from cloud import errors, rpc
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid, ref_id
from cloud.images import images as image_services
from cloud.images.models import Image
from compute_agent import messages as msg

from . import server_volumes
from .models import Instance
from .operations import REGISTRY, runs
from .spawn import build_spawn_request, download_ref
from .transitions import begin


def rescue_image(ctx: RequestContext, instance: Instance, rescue_image_ref: str | None) -> Image:
    """The image to rescue from: the one named (visible to the caller and active) or the server's
    own; 400 when there is none."""
    ref = rescue_image_ref or instance.image_ref
    if not ref:
        raise errors.BadRequest(
            f"Instance {instance.uuid} has no image of its own; give a rescue_image_ref.")
    image_id = canonical_uuid(ref_id(ref))
    image = image_services.visible_images(ctx).filter(pk=image_id).first() if image_id else None
    if image is None or image.status != "active":
        raise errors.BadRequest(f"Image {ref} could not be found.")
    return image


@runs("rescue")
def rescue(
    ctx: RequestContext,
    instance: Instance,
    rescue_image_ref: str | None = None,
    admin_pass: str | None = None,
) -> None:
    """Boot the server from a rescue image. A password asked for is ignored: Kumo injects none into
    guests (as Nova with enable_instance_password off), the rescue image's own access applies."""
    server_volumes.refuse_volume_backed(instance, "rescue", conflict=False)  # Nova's 400
    image = rescue_image(ctx, instance, rescue_image_ref)
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["rescue"])
        rpc.to_host(row.host, msg.TASK_RESCUE, msg.RescueRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid), image=download_ref(image, row),
            spawn=build_spawn_request(row, ctx.request_id)))


@runs("unrescue")
def unrescue(ctx: RequestContext, instance: Instance) -> None:
    """Boot the rescued server from its own disk again."""
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["unrescue"])
        rpc.to_host(row.host, msg.TASK_UNRESCUE, build_spawn_request(row, ctx.request_id))
