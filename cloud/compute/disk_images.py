"""An image a server's disk is uploaded into by its host: a snapshot, a shelve or a backup.

The image is queued here, in the request's transaction; the host PUTs the disk to the image API
with a token issued for the server's own user, as a snapshot does (guest_operations.create_image).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from cloud.identity import tokens
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid
from cloud.images import images as image_services
from cloud.images import members as image_members
from cloud.images.models import Image
from compute_agent import messages as msg

from . import guest_kinds
from .models import Instance

UPLOAD_TOKEN_TTL = 3600


def disk_image(
    ctx: RequestContext, instance: Instance, name: str, *, image_type: str,
    properties: dict[str, Any] | None = None,
) -> Image:
    """A queued image for the server's disk, with what Nova records on one."""
    base = instance.image_ref
    base_image = Image.objects.filter(pk=canonical_uuid(base)).first() if base else None
    image = image_services.create_image(ctx, {
        "name": name, "visibility": visibility_for(ctx, instance),
        # As Nova does: the image needs what its source needed, and at least its disk.
        "min_ram": base_image.min_ram if base_image else 0,
        "min_disk": max(base_image.min_disk if base_image else 0, instance.root_gb),
        "image_type": image_type, "instance_uuid": str(instance.uuid), "base_image_ref": base,
        # qcow2 of a VM's disk, or a container's root filesystem as a tar (hypervisor_type).
        **guest_kinds.saved_image_fields(instance, properties),
    })
    offer_to_owner(ctx, image, instance)
    return image


def visibility_for(ctx: RequestContext, instance: Instance) -> str:
    """As Nova makes an image of a server's disk: private to the server's project when its own
    user asks; shared when someone else's project (an admin) does, so that it can be offered to
    the server's project (offer_to_owner)."""
    return "private" if str(ctx.project_id) == str(instance.project_id) else "shared"


def offer_to_owner(ctx: RequestContext, image: Image, instance: Instance) -> None:
    """A shared image of another project's server is offered to that project (a membership),
    as Nova's image API client does, so the server's owner can read its snapshot."""
    if image.visibility == "shared":
        image_members.add_member(ctx, image.id, str(instance.project_id))


def upload_request(
    ctx: RequestContext, instance: Instance, image: Image, **fields: Any
) -> msg.SnapshotRequest:
    """What the host needs to upload the disk into `image`."""
    issued = tokens.issue(instance.user, instance.project, ["token"], ttl=UPLOAD_TOKEN_TTL)
    base_url = settings.KUMO_INTERNAL_URL.rstrip("/")
    return msg.SnapshotRequest(
        request_id=ctx.request_id, instance_uuid=str(instance.uuid), image_id=str(image.id),
        upload_url=f"{base_url}/image/v2/images/{image.id}/file", token=issued.token, **fields)
