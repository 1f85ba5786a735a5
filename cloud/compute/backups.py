"""createBackup with rotation (operation "backup").

A backup is a snapshot image marked image_type "backup" with its backup_type (Nova's
properties). Once the host has uploaded it, the rotation runs: of the server's active backups of
that type, the newest `rotation` are kept and the older ones deleted (rotation 0 keeps none, as
Nova's _rotate_backups does). The rotation waits in Instance.backup_rotation while the upload runs.
"""

from __future__ import annotations

import logging

from django.db import transaction

from cloud import rpc
from cloud.identity.context import RequestContext
from cloud.images import storage
from cloud.images.models import Image
from compute_agent import messages as msg

from . import server_volumes
from .disk_images import disk_image, upload_request
from .models import Instance
from .operations import REGISTRY, runs
from .transitions import begin

log = logging.getLogger(__name__)


@runs("backup")
def create_backup(
    ctx: RequestContext,
    instance: Instance,
    name: str,
    backup_type: str,
    rotation: int,
    metadata: dict[str, str] | None = None,
) -> str:
    """Back the server's disk up into a new image; its id."""
    server_volumes.refuse_volume_backed(instance, "back up", conflict=False)
    with transaction.atomic():
        image = disk_image(ctx, instance, name, image_type="backup",
                           properties={**(metadata or {}), "backup_type": backup_type})
        row = begin(ctx, instance, REGISTRY["backup"], backup_rotation=rotation)
        rpc.to_host(row.host, msg.TASK_BACKUP, upload_request(ctx, row, image))
    return str(image.id)


def rotate(instance_uuid: str, image_id: str, rotation: int | None) -> list[str]:
    """Delete the server's oldest backups of the type of `image_id` beyond `rotation`; the ids
    deleted. Inside the caller's transaction (the conductor's, ending the backup's task)."""
    if rotation is None:
        return []
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return []
    backup_type = (image.properties or {}).get("backup_type")
    backups = Image.objects.filter(
        properties__instance_uuid=str(instance_uuid), properties__image_type="backup",
        properties__backup_type=backup_type,
    ).exclude(status__in=["killed", "deleted", "pending_delete"]).order_by("-created_at", "-id")
    excess = list(backups.values_list("pk", flat=True)[rotation:])
    for pk in excess:
        Image.objects.filter(pk=pk).delete()
        transaction.on_commit(lambda pk=pk: storage.delete(pk))
    if excess:
        log.info("backup rotation of %s (%s, keep %d) deleted %s", instance_uuid, backup_type,
                 rotation, [str(pk) for pk in excess])
    return [str(pk) for pk in excess]
