"""Volumes (Cinder's volumes API): create (empty, from an image, a snapshot or another volume),
list, show, update, extend, delete, an admin's os-reset_status, upload to an image, bootable and
metadata.

Each request that needs the volume host moves the volume's status first (transitions.move, the one
compare-and-swap) and sends the host its task through the outbox in the same transaction, so a
refused move sends nothing and an accepted one is always sent. The host answers with a VolumeEvent
that the conductor applies (cloud/conductor/volume_events.py); a host that never answers is caught
by the conductor's deadlines.
"""

from __future__ import annotations

import ast
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, Sum

from cloud import errors, rpc
from cloud.identity import tokens, transfer_tokens
from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.ids import parse_uuid
from cloud.images import images as image_service
from cloud.images.models import Image
from compute_agent import messages as msg

from . import common, hosts, quotas, statuses, transitions, types
from .models import Volume, VolumeSnapshot

# The image download (create from an image) and upload (to an image) tokens: long enough for the
# task to wait in the host's queue and the transfer to start.
IMAGE_TOKEN_TTL = 3600
GIB = 1024**3
NO_BACKEND = "No valid backend was found. No volume host with enough room is up in the zone."

# Statuses a volume may be deleted from (Cinder's), and with force (an admin) any but these.
DELETABLE = frozenset({statuses.AVAILABLE, statuses.ERROR, statuses.ERROR_EXTENDING,
                       statuses.ERROR_DELETING})
_NOT_DELETABLE = (
    "Invalid volume: Volume status must be available or error or error_restoring or "
    "error_extending or error_managing and must not be migrating, attached, belong to a group, "
    "have snapshots, awaiting a transfer, or be disassociated from snapshots after volume "
    "transfer.")
SORTABLE = ("created_at", "updated_at", "name", "size", "status", "id", "availability_zone",
            "bootable")


def _request_id(ctx: RequestContext) -> str:
    return ctx.request_id if ctx.request_id and ctx.request_id != "-" else f"req-{uuid.uuid4()}"


def _image_ref(ctx: RequestContext, image: Image, url: str, project: Project) -> msg.ImageRef:
    """How the volume host reaches `image`'s data: the image API at KUMO_INTERNAL_URL with a token
    of the caller's own, so it can read (or write) exactly what the caller could (one the process
    issued lately while nothing identity holds changed since: transfer_tokens.py)."""
    try:
        token = transfer_tokens.token_for(ctx.user_id, project.id, ttl=IMAGE_TOKEN_TTL)
    except tokens.AuthenticationError:
        token = ""
    return msg.ImageRef(id=str(image.id), checksum=image.checksum or "",
                        disk_format=image.disk_format or "raw", size=image.size or 0,
                        url=url, token=token)


def _image_url(image_id: Any) -> str:
    return f"{settings.KUMO_INTERNAL_URL.rstrip('/')}/image/v2/images/{image_id}/file"


def _zone(value: Any) -> str:
    zone = common.text(value, "availability_zone") or "nova"
    known = set(hosts.VolumeHost.objects.values_list("availability_zone", flat=True)) | {"nova"}
    if zone not in known:
        raise errors.BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
    return zone


# --- create


def create_volume(ctx: RequestContext, body: Mapping[str, Any]) -> Volume:
    common.authorize(ctx, "volume:volumes:write")
    if common.as_bool(body.get("multiattach") or False, "multiattach"):
        raise errors.BadRequest("Invalid input received: multiattach volumes are not supported.")
    for unsupported in ("backup_id", "consistencygroup_id", "group_id"):
        if body.get(unsupported):
            raise errors.BadRequest(f"Invalid input received: {unsupported} is not supported.")
    sources = [key for key in ("snapshot_id", "source_volid", "imageRef") if body.get(key)]
    if len(sources) > 1:
        raise errors.BadRequest("Invalid input received: only one of snapshot_id, source_volid "
                                "and imageRef may be given.")
    size = None if body.get("size") in (None, "") else common.size_of(body["size"])
    fields: dict[str, Any] = {
        "name": common.text(body.get("name"), "name"),
        "description": common.text(body.get("description"), "description", max_length=65535),
        "metadata": common.metadata_of(body.get("metadata")),
        "project_id": ctx.project_id,
        "user_id": ctx.user_id,
    }
    request = msg.VolumeRequest(request_id=_request_id(ctx), volume_id="")
    source_host = None
    snapshot = source = image = None
    if body.get("snapshot_id"):
        snapshot = common.get_snapshot(ctx, body["snapshot_id"])
        if snapshot.status != statuses.AVAILABLE:
            raise errors.BadRequest(f"Invalid snapshot: Originating snapshot status must be one "
                                    f"of 'available' values (snapshot {snapshot.id} is "
                                    f"{snapshot.status}).")
        source = snapshot.volume
        size = size or snapshot.size
        if size < snapshot.size:
            raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be "
                                    f"smaller than the snapshot size {snapshot.size}GB. They "
                                    "must be >= original snapshot size.")
        fields.update(snapshot_id=snapshot.id, volume_type=source.volume_type,
                      bootable=source.bootable, image_metadata=source.image_metadata)
        request.source, request.snapshot_id = msg.SOURCE_SNAPSHOT, str(snapshot.id)
        request.source_volume_id = str(source.id)
        source_host = source.host
    elif body.get("source_volid"):
        source = common.get_volume(ctx, body["source_volid"])
        if source.status not in (statuses.AVAILABLE, statuses.IN_USE):
            raise errors.BadRequest(f"Invalid volume: Source volume status must be available or "
                                    f"in-use (volume {source.id} is {source.status}).")
        size = size or source.size
        if size < source.size:
            raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be "
                                    f"smaller than the source volume size {source.size}GB. "
                                    "They must be >= original volume size.")
        fields.update(source_volid=source.id, volume_type=source.volume_type,
                      bootable=source.bootable, image_metadata=source.image_metadata)
        request.source, request.source_volume_id = msg.SOURCE_VOLUME, str(source.id)
        source_host = source.host
    elif body.get("imageRef"):
        image = _source_image(ctx, body["imageRef"])
        least = max(math.ceil((image.virtual_size or image.size or 0) / GIB), image.min_disk, 1)
        size = size or least
        if size < least:
            raise errors.BadRequest(f"Invalid input received: Size of specified image "
                                    f"{math.ceil((image.virtual_size or image.size or 0) / GIB)}GB "
                                    f"is larger than volume size {size}GB (the image needs "
                                    f"{least}GB).")
        fields.update(image_id=image.id, bootable=True, image_metadata=_image_metadata(image))
        request.source = msg.SOURCE_IMAGE
    if size is None:
        raise errors.BadRequest("Invalid input received: size is required when no source is "
                                "given.")
    if body.get("volume_type") and not (snapshot or source):
        fields["volume_type"] = types.get_type(ctx, body["volume_type"], by_name=True)
    fields.setdefault("volume_type", None)
    if fields["volume_type"] is None:
        fields["volume_type"] = types.default_type()
    zone = source.availability_zone if source is not None else _zone(
        body.get("availability_zone"))
    with transaction.atomic():
        quotas.check(ctx.project_id, type_name=fields["volume_type"].name, volumes=1,
                     gigabytes=size, volume_size=size)
        # A copy of a volume or a snapshot is made where its data is.
        host = source_host if source is not None else hosts.pick_host(size, zone)
        volume = Volume.objects.create(
            size=size, availability_zone=zone, host=host,
            status=statuses.CREATING if host is not None else statuses.ERROR,
            status_reason="" if host is not None else NO_BACKEND, **fields)
        if host is not None:
            request.volume_id, request.size_gb = str(volume.id), size
            if image is not None:
                request.image = _image_ref(ctx, image, _image_url(image.id), volume.project)
            rpc.to_volume_host(host.name, msg.TASK_CREATE_VOLUME, request)
    return volume


def _source_image(ctx: RequestContext, ident: Any) -> Image:
    try:
        image = image_service.get_image(ctx, str(ident))
    except errors.NotFound:
        raise errors.BadRequest(f"Invalid image identifier or unable to access requested "
                                f"image. (image {ident})") from None
    if image.status != "active":
        raise errors.BadRequest(f"Invalid image: Image {image.id} is not active.")
    return image


def _image_metadata(image: Image) -> dict[str, str]:
    meta = {str(k): str(v) for k, v in (image.properties or {}).items()}
    meta.update({
        "image_id": str(image.id), "image_name": image.name or "",
        "disk_format": image.disk_format or "", "container_format": image.container_format or "",
        "min_disk": str(image.min_disk), "min_ram": str(image.min_ram),
        "size": str(image.size or 0), "checksum": image.checksum or "",
    })
    return meta


# --- read


def list_volumes(ctx: RequestContext, query: Mapping[str, str]) -> QuerySet[Volume]:
    common.authorize(ctx, "volume:volumes:read")
    rows = Volume.objects.select_related("volume_type", "host").prefetch_related("attachments")
    all_tenants = ctx.is_admin and common.as_bool(query.get("all_tenants") or "0", "all_tenants")
    if query.get("project_id") and ctx.is_admin and all_tenants:
        rows = rows.filter(project_id=query["project_id"])
    elif not all_tenants:
        rows = rows.filter(project_id=ctx.project_id)
    for param, field in (("name", "name"), ("display_name", "name"), ("status", "status"),
                         ("availability_zone", "availability_zone")):
        if query.get(param):
            rows = rows.filter(**{field: query[param]})
    if query.get("bootable") not in (None, ""):
        rows = rows.filter(bootable=common.as_bool(query["bootable"], "bootable"))
    if query.get("size") not in (None, ""):
        rows = rows.filter(size=common.size_of(query["size"]))
    if query.get("volume_type"):
        rows = rows.filter(volume_type__name=query["volume_type"]) | rows.filter(
            volume_type__id=parse_uuid(query["volume_type"]))
    if query.get("metadata"):
        rows = rows.filter(metadata__contains=_metadata_filter(query["metadata"]))
    return common.page(rows, query, sortable=SORTABLE)


def _metadata_filter(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise errors.BadRequest(f"Invalid metadata filter: {text}") from None
    return common.metadata_of(value)


def summary(ctx: RequestContext, query: Mapping[str, str]) -> dict[str, Any]:
    common.authorize(ctx, "volume:volumes:read")
    rows = Volume.objects.all()
    if not (ctx.is_admin and common.as_bool(query.get("all_tenants") or "0", "all_tenants")):
        rows = rows.filter(project_id=ctx.project_id)
    metadata: dict[str, list[str]] = {}
    for meta in rows.values_list("metadata", flat=True):
        for key, value in (meta or {}).items():
            metadata.setdefault(key, [])
            if value not in metadata[key]:
                metadata[key].append(value)
    return {"total_size": rows.aggregate(total=Sum("size"))["total"] or 0,
            "total_count": rows.count(), "metadata": metadata}


def get_volume(ctx: RequestContext, volume_id: Any) -> Volume:
    common.authorize(ctx, "volume:volumes:read")
    return common.get_volume(ctx, volume_id)


# --- change


def update_volume(ctx: RequestContext, volume_id: Any, body: Mapping[str, Any]) -> Volume:
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:write")
    known = ("name", "display_name", "description", "display_description", "metadata")
    if not any(key in body for key in known):
        raise errors.BadRequest("Invalid input received: nothing to update "
                                "(name, description or metadata).")
    changes: dict[str, Any] = {}
    for key, field in (("name", "name"), ("display_name", "name")):
        if key in body:
            changes[field] = common.text(body[key], "name")
    for key in ("description", "display_description"):
        if key in body:
            changes["description"] = common.text(body[key], "description", max_length=65535)
    if "metadata" in body:
        changes["metadata"] = common.metadata_of(body["metadata"])
    for field, value in changes.items():
        setattr(volume, field, value)
    volume.save(update_fields=[*changes, "updated_at"])
    return volume


def extend_volume(ctx: RequestContext, volume_id: Any, new_size: Any) -> Volume:
    size = common.size_of(new_size, name="new_size")
    with transaction.atomic():
        volume = common.get_volume(ctx, volume_id, for_update=True,
                                   action="volume:volumes:write")
        if volume.status != statuses.AVAILABLE:
            raise errors.BadRequest(f"Invalid volume: Volume {volume.id} status must be "
                                    f"available, but current status is: {volume.status}.")
        if size <= volume.size:
            raise errors.BadRequest(f"Invalid input received: New size for extend must be "
                                    f"greater than current size. (current: {volume.size}, "
                                    f"extended: {size}).")
        type_name = volume.volume_type.name if volume.volume_type else ""
        quotas.check(volume.project_id, type_name=type_name, gigabytes=size - volume.size,
                     volume_size=size)
        if volume.host is None or not transitions.move(volume.pk, statuses.EXTENDING):
            raise errors.BadRequest(f"Invalid volume: Volume {volume.id} cannot be extended now.")
        rpc.to_volume_host(volume.host.name, msg.TASK_EXTEND_VOLUME, msg.VolumeRequest(
            request_id=_request_id(ctx), volume_id=str(volume.pk), size_gb=size))
    volume.refresh_from_db()
    return volume


def delete_volume(ctx: RequestContext, volume_id: Any, *, cascade: bool = False,
                  force: bool = False) -> None:
    with transaction.atomic():
        volume = common.get_volume(ctx, volume_id, for_update=True, action=(
            "volume:volumes:force_delete" if force else "volume:volumes:write"))
        snapshots = VolumeSnapshot.objects.filter(volume=volume)
        attached = (volume.attach_status == statuses.ATTACHED or volume.attachments.exists())
        if attached or volume.status in (statuses.IN_USE, statuses.ATTACHING,
                                         statuses.DETACHING, statuses.RESERVED):
            raise errors.BadRequest(_NOT_DELETABLE)
        if snapshots.exists() and not cascade:
            raise errors.BadRequest(_NOT_DELETABLE)
        if cascade and snapshots.exclude(status__in=(statuses.AVAILABLE, statuses.ERROR,
                                                     statuses.ERROR_DELETING)).exists():
            raise errors.BadRequest("Invalid volume: Snapshot of volume is not in a state that "
                                    "can be deleted.")
        if volume.status == statuses.DELETING:
            return  # asked again: the first delete is under way
        if volume.host is None:
            # Nothing was ever made on a host (no room when it was created): the row is all.
            snapshots.delete()
            volume.delete()
            return
        if force:
            moved = transitions.force(volume.pk, statuses.DELETING)
        else:
            moved = transitions.move(volume.pk, statuses.DELETING, only_from=DELETABLE)
        if not moved:
            raise errors.BadRequest(_NOT_DELETABLE)
        snapshots.update(status=statuses.DELETING)
        rpc.to_volume_host(volume.host.name, msg.TASK_DELETE_VOLUME, msg.VolumeRequest(
            request_id=_request_id(ctx), volume_id=str(volume.pk)))


def reset_status(ctx: RequestContext, volume_id: Any, body: Mapping[str, Any]) -> None:
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:reset_status")
    changes: dict[str, Any] = {}
    status = body.get("status")
    if status is not None and status not in statuses.VOLUME_STATUSES:
        raise errors.BadRequest(f"Invalid input received: Invalid status {status!r}.")
    attach_status = body.get("attach_status")
    if attach_status is not None:
        if attach_status not in (statuses.ATTACHED, statuses.DETACHED):
            raise errors.BadRequest(f"Invalid input received: Invalid attach status "
                                    f"{attach_status!r}.")
        changes["attach_status"] = attach_status
    if "migration_status" in body:
        changes["migration_status"] = body["migration_status"]
    if status is None and not changes:
        raise errors.BadRequest("Invalid input received: Must specify 'status', "
                                "'attach_status' or 'migration_status' for update.")
    if status is not None:
        transitions.force(volume.pk, status, status_reason="", **changes)
    else:
        Volume.objects.filter(pk=volume.pk).update(**changes)


def reserve(ctx: RequestContext, volume_id: Any) -> None:
    """os-reserve (the attach flow before attachments): available -> reserved, else 400."""
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:write")
    if not transitions.move(volume.pk, statuses.RESERVED,
                            only_from=frozenset({statuses.AVAILABLE})):
        volume.refresh_from_db(fields=["status"])
        raise errors.BadRequest(f"Invalid volume: Volume {volume.pk} status must be available "
                                f"to reserve, but the current status is: {volume.status}.")


def unreserve(ctx: RequestContext, volume_id: Any) -> None:
    """os-unreserve: a reserved volume with no attachment is available again."""
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:write")
    if not volume.attachments.exists():
        transitions.move(volume.pk, statuses.AVAILABLE, only_from=frozenset({statuses.RESERVED}))


def retype(ctx: RequestContext, volume_id: Any, body: Mapping[str, Any]) -> None:
    """os-retype: another type for the volume. Every type lives on the same kind of volume host,
    so no data moves (Cinder's migration_policy is moot); the new type's quota is checked."""
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:write")
    if not body.get("new_type"):
        raise errors.BadRequest("Invalid input received: new_type is required.")
    new_type = types.get_type(ctx, body["new_type"], by_name=True)
    if new_type.pk == volume.volume_type_id:
        raise errors.BadRequest("Invalid input received: Retype requires a different volume "
                                "type.")
    with transaction.atomic():
        quotas.check(volume.project_id, type_name=new_type.name, volumes=1,
                     gigabytes=volume.size)
        moved = Volume.objects.filter(
            pk=volume.pk, status__in=(statuses.AVAILABLE, statuses.IN_USE)).update(
            volume_type=new_type)
    if not moved:
        raise errors.BadRequest(f"Invalid volume: Volume {volume.pk} status must be available "
                                f"or in-use, but current status is: {volume.status}.")


def set_bootable(ctx: RequestContext, volume_id: Any, value: Any) -> None:
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:write")
    volume.bootable = common.as_bool(value, "bootable")
    volume.save(update_fields=["bootable", "updated_at"])


def set_readonly(ctx: RequestContext, volume_id: Any, value: Any) -> None:
    """os-update_readonly_flag: kept in the volume's metadata as Cinder shows it ("readonly")."""
    volume = common.get_volume(ctx, volume_id, action="volume:volumes:write")
    volume.metadata = {**volume.metadata,
                       "readonly": str(common.as_bool(value, "readonly"))}
    volume.save(update_fields=["metadata", "updated_at"])


def upload_to_image(ctx: RequestContext, volume_id: Any,
                    body: Mapping[str, Any]) -> tuple[Volume, Image]:
    """os-volume_upload_image: a queued image the volume host fills (it becomes active by that
    upload); the volume is `uploading` meanwhile and goes back to what it was."""
    name = common.text(body.get("image_name"), "image_name")
    if not name:
        raise errors.BadRequest("Invalid input received: image_name is required.")
    force = common.as_bool(body.get("force") or False, "force")
    disk_format = body.get("disk_format") or "raw"
    if disk_format not in ("raw", "qcow2"):
        raise errors.BadRequest(f"Invalid disk-format '{disk_format}' is specified. "
                                "Allowed disk-formats are raw, qcow2.")
    with transaction.atomic():
        volume = common.get_volume(ctx, volume_id, for_update=True,
                                   action="volume:volumes:write")
        allowed = {statuses.AVAILABLE, statuses.IN_USE} if force else {statuses.AVAILABLE}
        if volume.status not in allowed or volume.host is None:
            raise errors.BadRequest(f"Invalid volume: Volume {volume.id} status must be "
                                    f"available{' or in-use' if force else ''}, but current "
                                    f"status is: {volume.status}.")
        image_body: dict[str, Any] = {
            "name": name, "disk_format": disk_format,
            "container_format": body.get("container_format") or "bare",
            "visibility": body.get("visibility") or "private",
        }
        if body.get("protected") is not None:
            image_body["protected"] = common.as_bool(body["protected"], "protected")
        image = image_service.create_image(ctx, image_body)
        if not transitions.move(volume.pk, statuses.UPLOADING, only_from=frozenset(allowed)):
            raise errors.BadRequest(f"Invalid volume: Volume {volume.id} cannot be uploaded now.")
        rpc.to_volume_host(volume.host.name, msg.TASK_UPLOAD_VOLUME, msg.VolumeRequest(
            request_id=_request_id(ctx), volume_id=str(volume.pk),
            image=_image_ref(ctx, image, _image_url(image.id), volume.project)))
    volume.refresh_from_db()
    return volume, image


# --- metadata


def get_metadata(ctx: RequestContext, volume_id: Any) -> dict[str, str]:
    return dict(get_volume(ctx, volume_id).metadata)


def set_metadata(ctx: RequestContext, volume_id: Any, values: Any, *,
                 replace: bool = False) -> dict[str, str]:
    wanted = common.metadata_of(values)
    with transaction.atomic():
        volume = common.get_volume(ctx, volume_id, for_update=True,
                                   action="volume:volumes:write")
        volume.metadata = wanted if replace else {**volume.metadata, **wanted}
        volume.save(update_fields=["metadata", "updated_at"])
    return dict(volume.metadata)


def get_metadata_item(ctx: RequestContext, volume_id: Any, key: str) -> dict[str, str]:
    metadata = get_volume(ctx, volume_id).metadata
    if key not in metadata:
        raise errors.NotFound(f"Volume {volume_id} has no metadata with key {key}.")
    return {key: metadata[key]}


def delete_metadata_item(ctx: RequestContext, volume_id: Any, key: str) -> None:
    with transaction.atomic():
        volume = common.get_volume(ctx, volume_id, for_update=True,
                                   action="volume:volumes:write")
        if key not in volume.metadata:
            raise errors.NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        volume.metadata = {k: v for k, v in volume.metadata.items() if k != key}
        volume.save(update_fields=["metadata", "updated_at"])
