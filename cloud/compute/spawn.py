"""The self-contained spawn request a compute agent gets: everything it needs, no database access.

The agent downloads the image itself, from the image API at KUMO_INTERNAL_URL, with a token issued
here for the instance's own user and project: it can read exactly what that user could, and it
expires soon after the build. The token is a secret like any other: it is never logged, and the
contract dataclass keeps it out of its repr. The boots of one user and project share one while
nothing identity holds changes (cloud/identity/transfer_tokens.py says why that is as safe).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import connection

from cloud.compute import network_plane, server_volumes, states
from cloud.compute.models import BlockDeviceMapping, Instance
from cloud.compute.servers import hostname_for
from cloud.identity import tokens, transfer_tokens
from cloud.ids import canonical_uuid
from cloud.images.models import Image
from cloud.network.models import Port
from compute_agent import messages as msg

LOG = logging.getLogger(__name__)

# Long enough for the message to wait in the host's queue and the download to start (a token kept
# for reuse is handed out with at least two thirds of it left: transfer_tokens.REUSE_WHILE_LEFT).
IMAGE_TOKEN_TTL = 900


def build_spawn_request(instance: Instance, request_id: str, host: str = "", *,
                        has_ports_and_volumes: tuple[bool, bool] | None = None) -> msg.SpawnRequest:
    """The request for `host` (default: the instance's own host), whose data plane plugs the
    instance's ports as the request describes them. `has_ports_and_volumes`: whether it has any,
    when the caller read that already (a scheduler reading several instances at once)."""
    hostname = instance.hostname or hostname_for(instance.display_name)
    has_ports, has_volumes = has_ports_and_volumes or _has_ports_and_volumes(instance)
    return msg.SpawnRequest(
        request_id=request_id,
        instance_uuid=str(instance.uuid),
        name=instance.display_name,
        hostname=hostname,
        vcpus=instance.vcpus,
        memory_mb=instance.memory_mb,
        root_gb=instance.root_gb,
        image=_image_ref(instance),
        networks=(networks_of(instance, host or instance.host or "", hostname=hostname)
                  if has_ports else []),
        user_data=instance.user_data or "",
        key_data=instance.key_data or "",
        metadata={str(k): str(v) for k, v in (instance.metadata or {}).items()},
        project_id=str(instance.project_id),
        availability_zone=instance.availability_zone or "",
        key_name=instance.key_name or "",
        launch_index=instance.launch_index,
        restore_from=_shelved_image(instance),
        # Its volumes go wherever it runs: a build, a move, an unshelve, an evacuation.
        block_devices=server_volumes.block_devices_of(instance) if has_volumes else [],
    )


# Whether the instance has ports and volumes, in one cheap round trip: most servers have no
# volume, some no port, and the ORM's queries that read them cost half a millisecond of CPU each
# even when they find nothing (every placement builds a spawn request).
_HAS_PORTS_AND_VOLUMES = (
    f"SELECT EXISTS (SELECT 1 FROM {Port._meta.db_table} WHERE device_id = %s), "
    f"EXISTS (SELECT 1 FROM {BlockDeviceMapping._meta.db_table} WHERE instance_id = %s)"
)


def _has_ports_and_volumes(instance: Instance) -> tuple[bool, bool]:
    key = BlockDeviceMapping._meta.get_field("instance").target_field.get_db_prep_value(
        instance.uuid, connection)
    with connection.cursor() as cursor:
        cursor.execute(_HAS_PORTS_AND_VOLUMES, [str(instance.uuid), key])
        ports, volumes = cursor.fetchone()
    return bool(ports), bool(volumes)


def _shelved_image(instance: Instance) -> msg.ImageRef | None:
    # An offloaded server boots again from the snapshot its disk was shelved to.
    if instance.vm_state != states.SHELVED_OFFLOADED or not instance.shelved_image_id:
        return None
    image = Image.objects.filter(pk=canonical_uuid(instance.shelved_image_id)).first()
    return download_ref(image, instance) if image is not None else None


def image_download_url(image_id: str) -> str:
    return f"{settings.KUMO_INTERNAL_URL.rstrip('/')}/image/v2/images/{image_id}/file"


def _image_ref(instance: Instance) -> msg.ImageRef | None:
    image_ref = instance.image_ref
    if not image_ref:
        return None
    known, image = joined_image(instance)
    if not known:
        try:
            image = Image.objects.filter(id=uuid.UUID(image_ref)).first()
        except ValueError:
            # Not a UUID: no Image row can match, the agent gets the bare id.
            image = None
    if image is not None:
        return download_ref(image, instance)
    return msg.ImageRef(id=image_ref)


# The scheduler reads an instance together with its image's row (a LEFT JOIN: its read of the
# instance, cloud/scheduler/manager.py), so that neither the request spec (the image's properties,
# which filters read) nor the spawn request (the download's figures) reads the image again: one
# query each per decision. The image's columns it reads, as `_image_<name>` on the instance.
JOINED_IMAGE_FIELDS = ("id", "disk_format", "size", "checksum", "properties")  # the model's order
_JOINED = "_joined_image"
# Image references the web writes are canonical UUIDs (servers.py); only those are joined (their
# key is the reference itself), others are looked up as before.
_CANONICAL = "'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"


def image_join(instance_alias: str, image_alias: str = "img") -> tuple[str, str]:
    """The select list and the LEFT JOIN that read an instance's image with it, for this
    database; keep_joined_image then puts it on the instance read."""
    columns = ", ".join(f"{image_alias}.{name} AS _image_{name}" for name in JOINED_IMAGE_FIELDS)
    ref = f"{instance_alias}.image_ref"
    if connection.vendor == "postgresql":
        key = f"CASE WHEN {ref} ~ {_CANONICAL} THEN CAST({ref} AS uuid) END"
    else:  # Django keeps a UUID elsewhere as its 32 hex digits
        key = f"REPLACE({ref}, '-', '')"
    return columns, f"LEFT JOIN {Image._meta.db_table} {image_alias} ON {image_alias}.id = {key}"


def keep_joined_image(instance: Instance) -> None:
    """Keep the image the instance's read joined (image_join's columns) as its image: an Image
    with those fields, or None when the reference names no image."""
    values = [instance.__dict__.pop(f"_image_{name}", None) for name in JOINED_IMAGE_FIELDS]
    ref = instance.image_ref
    if not ref or canonical_uuid(ref) != ref:
        return  # the join cannot have found it; _image_ref looks it up by its spelling
    image_id, disk_format, size, checksum, properties = values
    if image_id is None:
        instance.__dict__[_JOINED] = None
        return
    if isinstance(properties, str):
        properties = json.loads(properties)
    instance.__dict__[_JOINED] = Image.from_db(
        connection.alias, list(JOINED_IMAGE_FIELDS),
        [uuid.UUID(str(image_id)), disk_format, size, checksum, properties or {}])


def joined_image(instance: Instance) -> tuple[bool, Any]:
    """(True, the Image or None) when the instance was read with its image; (False, None) when
    it was not (then ask the database)."""
    if _JOINED in instance.__dict__:
        return True, instance.__dict__[_JOINED]
    return False, None


def share_joined_image(source: Instance, target: Instance) -> None:
    """Give `target`, which boots the same image as `source`, the image `source` was read with."""
    if _JOINED in source.__dict__ and target.image_ref == source.image_ref:
        target.__dict__[_JOINED] = source.__dict__[_JOINED]


def download_ref(image: Image, instance: Instance) -> msg.ImageRef:
    """How the instance's host downloads `image`: its figures, and a token of the instance's user."""
    return msg.ImageRef(
        id=str(image.id), checksum=image.checksum or "",
        disk_format=image.disk_format or "qcow2", size=image.size or 0,
        url=image_download_url(str(image.id)), token=_download_token(instance),
    )


def _download_token(instance: Instance) -> str:
    try:
        return transfer_tokens.token_for(instance.user_id, instance.project_id,
                                         ttl=IMAGE_TOKEN_TTL)
    except tokens.AuthenticationError as exc:
        # The user lost access since the request was accepted: the download will be refused and
        # the build fails with that reason, which is the truth.
        LOG.warning("no image token for instance %s: %s", instance.uuid, exc)
        return ""


def networks_of(instance: Instance, host: str = "", *, hostname: str = "") -> list[msg.NetworkInfo]:
    """The NICs the instance has (one per port bound to it), as `host` must plug them."""
    ports = Port.objects.filter(device_id=str(instance.uuid)).select_related("network")
    where = host or instance.host or ""
    return [network_plane.port_info(port, where, hostname=hostname or instance.hostname or "")
            for port in ports]
