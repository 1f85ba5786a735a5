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
from cloud.images.models import Image
from compute_agent import messages as msg

from .models import Instance

UPLOAD_TOKEN_TTL = 3600


def disk_image(
    ctx: RequestContext, instance: Instance, name: str, *, image_type: str,
    properties: dict[str, Any] | None = None,
) -> Image:
    """A queued image for the server's disk, with what Nova records on one."""
    base = instance.image_ref
    base_image = Image.objects.filter(pk=canonical_uuid(base)).first() if base else None
    return image_services.create_image(ctx, {
        "name": name, "disk_format": "qcow2", "container_format": "bare",
        # As Nova does: the image needs what its source needed, and at least its disk.
        "min_ram": base_image.min_ram if base_image else 0,
        "min_disk": max(base_image.min_disk if base_image else 0, instance.root_gb),
        "image_type": image_type, "instance_uuid": str(instance.uuid), "base_image_ref": base,
        **{k: v for k, v in (properties or {}).items() if k not in image_services.CORE},
    })


def upload_request(
    ctx: RequestContext, instance: Instance, image: Image, **fields: Any
) -> msg.SnapshotRequest:
    """What the host needs to upload the disk into `image`."""
    issued = tokens.issue(instance.user, instance.project, ["token"], ttl=UPLOAD_TOKEN_TTL)
    base_url = settings.KUMO_INTERNAL_URL.rstrip("/")
    return msg.SnapshotRequest(
        request_id=ctx.request_id, instance_uuid=str(instance.uuid), image_id=str(image.id),
        upload_url=f"{base_url}/image/v2/images/{image.id}/file", token=issued.token, **fields)
