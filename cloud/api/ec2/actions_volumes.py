"""EBS volumes and snapshots over Kumo's block storage: CreateVolume, DescribeVolumes,
AttachVolume, DetachVolume, DeleteVolume, CreateSnapshot, DescribeSnapshots, DeleteSnapshot.

Volumes and snapshots go through cloud/volumes (Cinder's service functions and policy); attach
and detach go through Nova's os-volume_attachments operations (cloud/compute/server_volumes.py)
under its rules, so the host plugs the disk in and the volume moves through Cinder's statuses.

What EC2 sees of Cinder's statuses: creating/downloading are `creating`; available, extending,
uploading and maintenance are `available` (`in-use` while attached); reserved, attaching,
in-use and detaching are `in-use`, the attachment itself `attaching`, `attached` or `detaching`;
deleting is `deleting`; every error is `error`. A snapshot is `pending` until its host made it,
then `completed` (100%); one being deleted is gone already, as in EC2.

Choices where EC2 and Kumo differ:
- VolumeType: a Kumo volume type of that name, or, for EC2's own names (standard, gp2, gp3, io1,
  io2, st1, sc1) that the cloud has not defined, the default type: scripts written for EC2 run
  unchanged, and the answer names the type actually used. Any other unknown name is
  InvalidParameterValue. Iops and Throughput are accepted and have no effect.
- Device: Kumo gives the next free virtio name (/dev/vdb, …), as Nova does, whatever was asked;
  the answer and DescribeVolumes show that name. DetachVolume's Force is accepted and the detach
  is the ordinary one (the host takes the disk out once the guest let it go).
- A volume with snapshots cannot be deleted (Kumo's snapshots live inside their volume):
  IncorrectState, saying to delete the snapshots first.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from cloud import errors
from cloud.compute import operations
from cloud.compute.models import BlockDeviceMapping, Instance
from cloud.identity.context import RequestContext
from cloud.ids import ec2_id
from cloud.volumes import snapshots, statuses, types, volumes
from cloud.volumes.models import Volume, VolumeAttachment, VolumeSnapshot
from cloud.volumes.quotas import OverQuota

from . import listing, resources, tags
from .actions_instances import dry_run
from .actions_security_groups import owner_id
from .errors import Ec2Error, invalid, translate
from .registry import Call, action

EC2_TYPES = frozenset({"standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"})

_VOLUME_STATE = {
    statuses.CREATING: "creating", statuses.DOWNLOADING: "creating",
    statuses.AVAILABLE: "available", statuses.EXTENDING: "available",
    statuses.UPLOADING: "available", statuses.MAINTENANCE: "available",
    statuses.RESERVED: "in-use", statuses.ATTACHING: "in-use", statuses.IN_USE: "in-use",
    statuses.DETACHING: "in-use", statuses.DELETING: "deleting",
}
_ATTACHMENT_STATE = {
    statuses.ATTACH_RESERVED: "attaching", statuses.ATTACH_ATTACHING: "attaching",
    statuses.ATTACH_ATTACHED: "attached", statuses.ATTACH_DETACHING: "detaching",
}
_SNAPSHOT_STATE = {statuses.CREATING: "pending", statuses.AVAILABLE: "completed"}

VOLUME_FILTERS: listing.Filters = {
    "volume-id": listing.path("volumeId"),
    "status": listing.path("status"),
    "size": listing.path("size"),
    "availability-zone": listing.path("availabilityZone"),
    "create-time": listing.path("createTime"),
    "snapshot-id": listing.path("snapshotId"),
    "volume-type": listing.path("volumeType"),
    "encrypted": listing.path("encrypted"),
    "multi-attach-enabled": listing.path("multiAttachEnabled"),
    "attachment.instance-id": listing.path("attachmentSet", "instanceId"),
    "attachment.status": listing.path("attachmentSet", "status"),
    "attachment.device": listing.path("attachmentSet", "device"),
    "attachment.attach-time": listing.path("attachmentSet", "attachTime"),
    "attachment.delete-on-termination": listing.path("attachmentSet", "deleteOnTermination"),
}
SNAPSHOT_FILTERS: listing.Filters = {
    "snapshot-id": listing.path("snapshotId"),
    "volume-id": listing.path("volumeId"),
    "status": listing.path("status"),
    "owner-id": listing.path("ownerId"),
    "description": listing.path("description"),
    "progress": listing.path("progress"),
    "start-time": listing.path("startTime"),
    "volume-size": listing.path("volumeSize"),
    "encrypted": listing.path("encrypted"),
}


# --- what the project has


def own_volumes(ctx: RequestContext) -> QuerySet[Volume]:
    """The project's volumes (an admin's EC2 account is their project too)."""
    volumes.list_volumes(ctx, {})  # Cinder's read check
    return Volume.objects.filter(project_id=ctx.project_id).select_related(
        "volume_type").order_by("created_at", "id")


def own_snapshots(ctx: RequestContext) -> QuerySet[VolumeSnapshot]:
    snapshots.list_snapshots(ctx, {})
    return VolumeSnapshot.objects.filter(project_id=ctx.project_id).exclude(
        status=statuses.DELETING).order_by("created_at", "id")


def _instance(ctx: RequestContext, instance_id: str) -> Instance:
    return resources.find(resources.INSTANCE, instance_id, Instance.objects.filter(
        project_id=ctx.project_id, deleted=False))


# --- shapes


def attachment_shape(attachment: VolumeAttachment,
                     mapping: BlockDeviceMapping | None) -> dict[str, Any]:
    return {
        "volumeId": ec2_id("vol", attachment.volume_id),
        "instanceId": ec2_id("i", attachment.instance_uuid) if attachment.instance_uuid else None,
        "device": mapping.device_name if mapping else attachment.mountpoint or None,
        "status": _ATTACHMENT_STATE.get(attachment.status, "detached"),
        "attachTime": attachment.attach_time or attachment.created_at,
        "deleteOnTermination": bool(mapping and mapping.delete_on_termination),
    }


def describe_volume(volume: Volume, attached: list[dict[str, Any]],
                    tag_set: list[dict[str, str]]) -> dict[str, Any]:
    state = _VOLUME_STATE.get(volume.status, "error")
    if state == "available" and attached:
        state = "in-use"
    return {
        "volumeId": ec2_id("vol", volume.pk), "size": volume.size,
        "snapshotId": ec2_id("snap", volume.snapshot_id) if volume.snapshot_id else "",
        "availabilityZone": volume.availability_zone, "status": state,
        "createTime": volume.created_at, "attachmentSet": attached,
        "volumeType": volume.volume_type.name if volume.volume_type else "",
        "encrypted": False, "multiAttachEnabled": volume.multiattach, "tagSet": tag_set,
    }


def describe_volumes_of(rows: list[Volume]) -> list[dict[str, Any]]:
    """The volumes as EC2 shows them, their attachments and tags read in one query each."""
    ids = [v.pk for v in rows]
    found = list(VolumeAttachment.objects.filter(volume_id__in=ids).order_by("created_at"))
    mappings = {m.attachment_id: m for m in BlockDeviceMapping.objects.filter(
        attachment_id__in=[a.pk for a in found])}
    by_volume: dict[Any, list[dict[str, Any]]] = {}
    for attachment in found:
        if attachment.status in _ATTACHMENT_STATE:
            by_volume.setdefault(attachment.volume_id, []).append(
                attachment_shape(attachment, mappings.get(attachment.pk)))
    tagged = tags.tags_for(resources.VOLUME, ids)
    return [describe_volume(v, by_volume.get(v.pk, []), tagged[str(v.pk)]) for v in rows]


def describe_snapshot(snapshot: VolumeSnapshot, tag_set: list[dict[str, str]]) -> dict[str, Any]:
    state = _SNAPSHOT_STATE.get(snapshot.status, "error")
    return {
        "snapshotId": ec2_id("snap", snapshot.pk), "volumeId": ec2_id("vol", snapshot.volume_id),
        "status": state, "startTime": snapshot.created_at,
        "progress": "100%" if state == "completed" else snapshot.progress,
        "ownerId": owner_id(snapshot.project_id), "volumeSize": snapshot.size,
        "description": snapshot.description, "encrypted": False,
        "statusMessage": snapshot.status_reason or None, "tagSet": tag_set,
    }


# --- volumes


def _volume_type(ctx: RequestContext, name: str | None) -> str | None:
    """The Kumo type name for EC2's VolumeType (see the module's note)."""
    if not name:
        return None
    try:
        return types.get_type(ctx, name, by_name=True).name
    except errors.NotFound:
        if name in EC2_TYPES:
            return None
        raise invalid("VolumeType", name, "No volume type of that name; use one of this "
                      "cloud's types or an EC2 type name.") from None


@action("CreateVolume", "volume:volumes:write")
def create_volume(call: Call) -> dict[str, Any]:
    ctx, params = call.ctx, call.params
    if params.flag("Encrypted", False) or params.get("KmsKeyId"):
        raise invalid("Encrypted", "true", "Kumo's volumes are not encrypted.")
    if params.flag("MultiAttachEnabled", False):
        raise invalid("MultiAttachEnabled", "true", "Kumo's volumes attach to one instance.")
    size = params.integer("Size", None, low=1, high=16384)
    snapshot_id = params.get("SnapshotId")
    if size is None and not snapshot_id:
        raise Ec2Error("MissingParameter", "The request must contain the parameter Size or "
                       "SnapshotId.")
    body: dict[str, Any] = {"size": size,
                            "metadata": tags.tag_specifications(params, "volume")}
    if snapshot_id:
        body["snapshot_id"] = str(resources.find(resources.SNAPSHOT, snapshot_id,
                                                 own_snapshots(ctx)).pk)
    else:
        body["volume_type"] = _volume_type(ctx, params.get("VolumeType"))
    if params.get("AvailabilityZone"):
        body["availability_zone"] = params.get("AvailabilityZone")
    dry_run(call.params)
    try:
        volume = volumes.create_volume(ctx, body)
    except OverQuota as exc:
        raise Ec2Error("VolumeLimitExceeded", exc.message) from None
    except errors.BadRequest as exc:
        if "Availability zone" in exc.message:
            raise Ec2Error("InvalidZone.NotFound", exc.message) from None
        raise
    return describe_volumes_of([volume])[0]


@action("DescribeVolumes", "volume:volumes:read")
def describe_volumes(call: Call) -> dict[str, Any]:
    visible = own_volumes(call.ctx)
    ids = call.params.strings("VolumeId")
    rows = (resources.find_all(resources.VOLUME, ids, visible) if ids else list(visible))
    items = listing.apply(describe_volumes_of(rows), call.params, VOLUME_FILTERS)
    items, token = listing.page(items, call.params, low=5, high=500)
    return {"volumeSet": items, "nextToken": token}


@action("DeleteVolume", "volume:volumes:write")
def delete_volume(call: Call) -> dict[str, Any]:
    volume = resources.find(resources.VOLUME, call.params.required("VolumeId"),
                            own_volumes(call.ctx))
    if volume.attachments.exists() or volume.status in (
            statuses.IN_USE, statuses.ATTACHING, statuses.DETACHING, statuses.RESERVED):
        raise Ec2Error("VolumeInUse", f"Volume {ec2_id('vol', volume.pk)} is currently "
                       "attached to an instance")
    if volume.snapshots.exclude(status=statuses.DELETING).exists():
        raise Ec2Error("IncorrectState", f"Volume {ec2_id('vol', volume.pk)} has snapshots, "
                       "which live inside it on this cloud: delete them first.")
    dry_run(call.params)
    try:
        volumes.delete_volume(call.ctx, str(volume.pk))
    except errors.BadRequest as exc:
        raise Ec2Error("IncorrectState", exc.message) from None
    return {"return": True}


@action("AttachVolume", "compute:volume_attachments:create")
def attach_volume(call: Call) -> dict[str, Any]:
    ctx, params = call.ctx, call.params
    volume = resources.find(resources.VOLUME, params.required("VolumeId"), own_volumes(ctx))
    instance = _instance(ctx, params.required("InstanceId"))
    params.required("Device")  # EC2 requires it; Kumo names the device (see the module note)
    if volume.status != statuses.AVAILABLE:
        code = "VolumeInUse" if _VOLUME_STATE.get(volume.status) == "in-use" else \
            "IncorrectState"
        raise Ec2Error(code, f"{ec2_id('vol', volume.pk)} is {volume.status}, not available")
    dry_run(call.params)
    try:
        mapping = operations.perform(ctx, instance, "attach_volume", volume_id=str(volume.pk))
    except errors.BadRequest as exc:
        raise Ec2Error("IncorrectState", exc.message) from None
    except errors.Conflict as exc:
        raise Ec2Error("IncorrectInstanceState", exc.message) from None
    return {"volumeId": ec2_id("vol", volume.pk), "instanceId": ec2_id("i", instance.pk),
            "device": mapping.device_name, "status": "attaching",
            "attachTime": mapping.created_at,
            "deleteOnTermination": mapping.delete_on_termination}


@action("DetachVolume", "compute:volume_attachments:delete")
def detach_volume(call: Call) -> dict[str, Any]:
    ctx, params = call.ctx, call.params
    volume = resources.find(resources.VOLUME, params.required("VolumeId"), own_volumes(ctx))
    attachment = VolumeAttachment.objects.filter(volume=volume).order_by("created_at").first()
    if attachment is None or attachment.instance_uuid is None:
        raise Ec2Error("IncorrectState", f"Volume '{ec2_id('vol', volume.pk)}' is in the "
                       "'available' state.")
    instance_id = params.get("InstanceId")
    if instance_id:
        instance = _instance(ctx, instance_id)
        if instance.pk != attachment.instance_uuid:
            raise Ec2Error("InvalidAttachment.NotFound", f"Volume '{ec2_id('vol', volume.pk)}' "
                           f"is not attached to '{instance_id}'.")
    else:
        instance = Instance.objects.filter(pk=attachment.instance_uuid, deleted=False,
                                           project_id=ctx.project_id).first()
        if instance is None:
            raise Ec2Error("IncorrectState", "The volume's instance is gone.")
    mapping = BlockDeviceMapping.objects.filter(attachment_id=attachment.pk).first()
    device = params.get("Device")
    if device and mapping and device != mapping.device_name:
        raise Ec2Error("InvalidAttachment.NotFound", f"Volume '{ec2_id('vol', volume.pk)}' is "
                       f"attached as {mapping.device_name}, not {device}.")
    dry_run(call.params)
    try:
        operations.perform(ctx, instance, "detach_volume", volume_id=str(volume.pk))
    except errors.BadRequest as exc:
        code = "OperationNotPermitted" if "root" in exc.message else "IncorrectState"
        raise Ec2Error(code, exc.message) from None
    except errors.Conflict as exc:
        raise Ec2Error("IncorrectInstanceState", exc.message) from None
    attachment.refresh_from_db()
    shape = attachment_shape(attachment, mapping)
    shape["status"] = "detaching"
    return shape


# --- snapshots


@action("CreateSnapshot", "volume:snapshots:write")
def create_snapshot(call: Call) -> dict[str, Any]:
    ctx, params = call.ctx, call.params
    volume = resources.find(resources.VOLUME, params.required("VolumeId"), own_volumes(ctx))
    wanted_tags = tags.tag_specifications(params, "snapshot")
    dry_run(call.params)
    try:
        # EC2 snapshots an attached volume as it is: Cinder's force
        snapshot = snapshots.create_snapshot(ctx, {
            "volume_id": str(volume.pk), "force": True, "metadata": wanted_tags,
            "description": params.get("Description") or ""})
    except OverQuota as exc:
        raise Ec2Error("SnapshotLimitExceeded", exc.message) from None
    except errors.BadRequest as exc:
        raise Ec2Error("IncorrectState", exc.message) from None
    return describe_snapshot(snapshot, [{"key": k, "value": v}
                                        for k, v in sorted(wanted_tags.items())])


@action("DescribeSnapshots", "volume:snapshots:read")
def describe_snapshots(call: Call) -> dict[str, Any]:
    ctx, params = call.ctx, call.params
    visible = own_snapshots(ctx)
    ids = params.strings("SnapshotId")
    rows = resources.find_all(resources.SNAPSHOT, ids, visible) if ids else list(visible)
    owners = params.strings("Owner")
    mine = owner_id(ctx.project_id)
    if owners and not ({"self", mine} & set(owners)):
        rows = []  # only the project's own snapshots exist for it (none are public)
    tagged = tags.tags_for(resources.SNAPSHOT, [s.pk for s in rows])
    items = [describe_snapshot(s, tagged[str(s.pk)]) for s in rows]
    items = listing.apply(items, params, SNAPSHOT_FILTERS)
    items, token = listing.page(items, params, low=5, high=1000)
    return {"snapshotSet": items, "nextToken": token}


@action("DeleteSnapshot", "volume:snapshots:write")
def delete_snapshot(call: Call) -> dict[str, Any]:
    snapshot = resources.find(resources.SNAPSHOT, call.params.required("SnapshotId"),
                              own_snapshots(call.ctx))
    dry_run(call.params)
    try:
        snapshots.delete_snapshot(call.ctx, str(snapshot.pk))
    except errors.BadRequest as exc:
        raise Ec2Error("IncorrectState", exc.message) from None
    except errors.KumoError as exc:
        raise translate(exc, "InvalidSnapshot.NotFound") from None
    return {"return": True}
