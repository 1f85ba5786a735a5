"""Cinder's response bodies, built per microversion and per caller: Tempest validates each against
a schema that refuses keys its version does not define (tempest/lib/api_schema/response/volume),
and the admin-only attributes (host, migration status) are shown to admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloud.volumes import hosts
from cloud.volumes.models import Volume, VolumeSnapshot, VolumeType

from .base import VolumeView


def iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if when else None


def _attachments(volume: Volume) -> list[dict[str, Any]]:
    return [{
        "server_id": str(a.instance_uuid) if a.instance_uuid else None,
        "attachment_id": str(a.pk),
        "attached_at": iso(a.attach_time),
        "host_name": a.attached_host or None,
        "volume_id": str(volume.pk),
        "device": a.mountpoint or None,
        "id": str(volume.pk),
    } for a in volume.attachments.all() if a.instance_uuid]


def volume_body(view: VolumeView, volume: Volume, *, extended: bool = True) -> dict[str, Any]:
    """A volume as show and detail give it; `extended` False is what create and update answer
    (Cinder adds the tenant, host, migration and image attributes only on reads)."""
    project = str(volume.project_id)
    body: dict[str, Any] = {
        "id": str(volume.pk),
        "name": volume.name,
        "description": volume.description,
        "size": volume.size,
        "status": volume.status,
        "availability_zone": volume.availability_zone,
        "created_at": iso(volume.created_at),
        "updated_at": iso(volume.updated_at),
        "attachments": _attachments(volume),
        "links": view.links(project, "volumes", str(volume.pk)),
        "encrypted": False,
        "replication_status": None,
        "snapshot_id": str(volume.snapshot_id) if volume.snapshot_id else None,
        "source_volid": str(volume.source_volid) if volume.source_volid else None,
        "user_id": volume.user_id,
        "metadata": dict(volume.metadata),
        "multiattach": volume.multiattach,
        "consistencygroup_id": None,
        "bootable": "true" if volume.bootable else "false",
        "volume_type": volume.volume_type.name if volume.volume_type else None,
        "migration_status": volume.migration_status,
    }
    version = view.version
    if version.at_least("3.13"):
        body["group_id"] = None
    if version.at_least("3.21"):
        body["provider_id"] = None
    if version.at_least("3.48"):
        body["service_uuid"] = None
        body["shared_targets"] = False
    if version.at_least("3.63"):
        body["volume_type_id"] = str(volume.volume_type_id) if volume.volume_type_id else None
    if version.at_least("3.64"):
        body["encryption_key_id"] = None
    if version.at_least("3.65"):
        body["consumes_quota"] = True
    if not extended:
        return body
    body["os-vol-tenant-attr:tenant_id"] = project
    if volume.image_metadata:
        body["volume_image_metadata"] = dict(volume.image_metadata)
    if view.ctx.is_admin:
        body["os-vol-host-attr:host"] = hosts.host_string(volume.host)
        body["os-vol-mig-status-attr:migstat"] = volume.migration_status
        body["os-vol-mig-status-attr:name_id"] = None
        if version.at_least("3.61"):
            body["cluster_name"] = None
    return body


def volume_summary(view: VolumeView, volume: Volume) -> dict[str, Any]:
    return {"id": str(volume.pk), "name": volume.name,
            "links": view.links(str(volume.project_id), "volumes", str(volume.pk))}


def snapshot_body(view: VolumeView, snapshot: VolumeSnapshot, *,
                  detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(snapshot.pk),
        "name": snapshot.name,
        "description": snapshot.description,
        "volume_id": str(snapshot.volume_id),
        "size": snapshot.size,
        "status": snapshot.status,
        "metadata": dict(snapshot.metadata),
        "created_at": iso(snapshot.created_at),
        "updated_at": iso(snapshot.updated_at),
    }
    version = view.version
    if version.at_least("3.14"):
        body["group_snapshot_id"] = None
    if version.at_least("3.41"):
        body["user_id"] = snapshot.user_id
    if version.at_least("3.65"):
        body["consumes_quota"] = True
    if detail:
        body["os-extended-snapshot-attributes:progress"] = snapshot.progress
        body["os-extended-snapshot-attributes:project_id"] = str(snapshot.project_id)
    return body


def type_body(vtype: VolumeType, *, for_create: bool = False,
              for_update: bool = False) -> dict[str, Any]:
    """Cinder's type: its create answer has no qos_specs_id, its update answer no access flag."""
    body: dict[str, Any] = {
        "id": str(vtype.pk),
        "name": vtype.name,
        "description": vtype.description or None,
        "is_public": vtype.is_public,
        "extra_specs": dict(vtype.extra_specs),
    }
    if not for_update:
        body["os-volume-type-access:is_public"] = vtype.is_public
    if not (for_create or for_update):
        body["qos_specs_id"] = None
    return body
