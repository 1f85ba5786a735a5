"""Volume snapshots (Cinder's snapshots API): a qcow2 internal snapshot on the volume's own host,
so taking one copies nothing. Create (of an available volume, or an in-use one with force),
list, show, update, delete, metadata and an admin's os-reset_status; each status move through
transitions.move_snapshot, and the host told through the outbox in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors, rpc
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from compute_agent import messages as msg

from . import common, quotas, statuses, transitions
from .models import Volume, VolumeSnapshot

SORTABLE = ("created_at", "updated_at", "name", "size", "status", "id")


def _request_id(ctx: RequestContext) -> str:
    return ctx.request_id if ctx.request_id and ctx.request_id != "-" else f"req-{uuid.uuid4()}"


def create_snapshot(ctx: RequestContext, body: Mapping[str, Any]) -> VolumeSnapshot:
    force = common.as_bool(body.get("force") or False, "force")
    name = common.text(body.get("name", body.get("display_name")), "name")
    description = common.text(body.get("description", body.get("display_description")),
                              "description", max_length=65535)
    metadata = common.metadata_of(body.get("metadata"))
    with transaction.atomic():
        # No volume_id names no volume: Cinder's 404, as for one that does not exist.
        volume = common.get_volume(ctx, body.get("volume_id"), for_update=True,
                                   action="volume:snapshots:write")
        allowed = (statuses.AVAILABLE, statuses.IN_USE) if force else (statuses.AVAILABLE,)
        if volume.status not in allowed or volume.host is None:
            raise errors.BadRequest(f"Invalid volume: Volume {volume.id} status must be "
                                    f"available{' or in-use' if force else ''}, but current "
                                    f"status is: {volume.status}.")
        quotas.check(volume.project_id,
                     type_name=volume.volume_type.name if volume.volume_type else "",
                     snapshots=1, gigabytes=volume.size)
        snapshot = VolumeSnapshot.objects.create(
            volume=volume, project_id=volume.project_id, user_id=ctx.user_id, name=name,
            description=description, size=volume.size, metadata=metadata)
        rpc.to_volume_host(volume.host.name, msg.TASK_CREATE_VOLUME_SNAPSHOT, msg.VolumeRequest(
            request_id=_request_id(ctx), volume_id=str(volume.pk), snapshot_id=str(snapshot.pk)))
    return snapshot


def list_snapshots(ctx: RequestContext, query: Mapping[str, str]) -> QuerySet[VolumeSnapshot]:
    common.authorize(ctx, "volume:snapshots:read")
    rows = VolumeSnapshot.objects.all()
    all_tenants = ctx.is_admin and common.as_bool(query.get("all_tenants") or "0", "all_tenants")
    if query.get("project_id") and all_tenants:
        rows = rows.filter(project_id=query["project_id"])
    elif not all_tenants:
        rows = rows.filter(project_id=ctx.project_id)
    for param, field in (("name", "name"), ("display_name", "name"), ("status", "status")):
        if query.get(param):
            rows = rows.filter(**{field: query[param]})
    if query.get("volume_id"):
        rows = rows.filter(volume_id=parse_uuid(query["volume_id"]))
    return common.page(rows, query, sortable=SORTABLE)


def get_snapshot(ctx: RequestContext, snapshot_id: Any) -> VolumeSnapshot:
    common.authorize(ctx, "volume:snapshots:read")
    return common.get_snapshot(ctx, snapshot_id)


def update_snapshot(ctx: RequestContext, snapshot_id: Any,
                    body: Mapping[str, Any]) -> VolumeSnapshot:
    snapshot = common.get_snapshot(ctx, snapshot_id, action="volume:snapshots:write")
    changed = []
    for key in ("name", "display_name"):
        if key in body:
            snapshot.name = common.text(body[key], "name")
            changed.append("name")
    for key in ("description", "display_description"):
        if key in body:
            snapshot.description = common.text(body[key], "description", max_length=65535)
            changed.append("description")
    if not changed:
        raise errors.BadRequest("Invalid input received: nothing to update (name or "
                                "description).")
    snapshot.save(update_fields=[*set(changed), "updated_at"])
    return snapshot


def delete_snapshot(ctx: RequestContext, snapshot_id: Any, *, force: bool = False) -> None:
    with transaction.atomic():
        snapshot = common.get_snapshot(ctx, snapshot_id, action=(
            "volume:snapshots:reset_status" if force else "volume:snapshots:write"))
        volume = Volume.objects.select_for_update(of=("self",)).select_related("host").get(
            pk=snapshot.volume_id)
        if snapshot.status == statuses.DELETING:
            return
        if force:
            moved = VolumeSnapshot.objects.filter(pk=snapshot.pk).update(
                status=statuses.DELETING, updated_at=timezone.now()) == 1
        else:
            moved = transitions.move_snapshot(snapshot.pk, statuses.DELETING)
        if not moved:
            raise errors.BadRequest(f"Invalid snapshot: Volume Snapshot status must be available "
                                    f"or error, but current status is: {snapshot.status}.")
        if volume.host is None:
            snapshot.delete()
            return
        rpc.to_volume_host(volume.host.name, msg.TASK_DELETE_VOLUME_SNAPSHOT, msg.VolumeRequest(
            request_id=_request_id(ctx), volume_id=str(volume.pk), snapshot_id=str(snapshot.pk)))


def reset_status(ctx: RequestContext, snapshot_id: Any, status: Any) -> None:
    snapshot = common.get_snapshot(ctx, snapshot_id, action="volume:snapshots:reset_status")
    if status not in statuses.SNAPSHOT_STATUSES:
        raise errors.BadRequest(f"Invalid input received: Invalid status {status!r}.")
    VolumeSnapshot.objects.filter(pk=snapshot.pk).update(status=status, updated_at=timezone.now())


# --- metadata


def set_metadata(ctx: RequestContext, snapshot_id: Any, values: Any, *,
                 replace: bool = False) -> dict[str, str]:
    wanted = common.metadata_of(values)
    with transaction.atomic():
        snapshot = common.get_snapshot(ctx, snapshot_id, action="volume:snapshots:write")
        VolumeSnapshot.objects.select_for_update().filter(pk=snapshot.pk).first()
        snapshot.refresh_from_db()
        snapshot.metadata = wanted if replace else {**snapshot.metadata, **wanted}
        snapshot.save(update_fields=["metadata", "updated_at"])
    return dict(snapshot.metadata)


def delete_metadata_item(ctx: RequestContext, snapshot_id: Any, key: str) -> None:
    with transaction.atomic():
        snapshot = common.get_snapshot(ctx, snapshot_id, action="volume:snapshots:write")
        VolumeSnapshot.objects.select_for_update().filter(pk=snapshot.pk).first()
        snapshot.refresh_from_db()
        if key not in snapshot.metadata:
            raise errors.NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")
        snapshot.metadata = {k: v for k, v in snapshot.metadata.items() if k != key}
        snapshot.save(update_fields=["metadata", "updated_at"])
