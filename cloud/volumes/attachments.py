"""A volume's attachments: one volume on one server, from its reservation to its removal.

Both the compute side (os-volume_attachments, boot from volume, server delete) and Cinder's v3
attachments API move them, always through these functions:

    reserve ──> attaching ──> attached (volume in-use) ──> detaching ──> gone (volume available)
       │            │                                          │
       └────────────┴── failed: gone, the volume available     └── detach failed: attached again

Each step is one compare-and-swap of the volume (transitions.move, statuses.VOLUME_MOVES) and of
the attachment row, in one transaction: two requests racing for one volume cannot both reserve
it, and a step repeated (a redelivered report) finds nothing to move and changes nothing. No
multiattach: a volume has at most one attachment.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from cloud import errors
from cloud.ids import parse_uuid

from . import statuses as st
from .models import Volume, VolumeAttachment
from .transitions import move


def _volume_row(volume_id: Any) -> Volume:
    parsed = parse_uuid(str(volume_id))
    volume = Volume.objects.filter(pk=parsed).first() if parsed else None
    if volume is None:
        raise errors.NotFound(f"Volume {volume_id} could not be found.")
    return volume


def reserve(volume_id: Any, instance_uuid: str, *, mountpoint: str = "",
            attach_mode: str = "rw") -> VolumeAttachment:
    """Hold an available volume for the server: the volume `reserved`, a new attachment
    `reserved`. A volume in any other status is a 400 saying which (Nova's and Cinder's)."""
    with transaction.atomic():
        volume = _volume_row(volume_id)
        if not move(volume.pk, st.RESERVED, only_from=frozenset({st.AVAILABLE})):
            volume.refresh_from_db(fields=["status"])
            raise errors.BadRequest(
                f"Invalid volume: Volume {volume.pk} status must be available to reserve, but "
                f"the current status is {volume.status}.")
        return VolumeAttachment.objects.create(
            volume=volume, instance_uuid=instance_uuid, mountpoint=mountpoint,
            attach_mode=attach_mode, status=st.ATTACH_RESERVED)


def _attachment(attachment_id: Any) -> VolumeAttachment | None:
    parsed = parse_uuid(str(attachment_id))
    return VolumeAttachment.objects.filter(pk=parsed).first() if parsed else None


def _move_attachment(attachment: VolumeAttachment, new: str, from_: frozenset[str],
                     **changes: Any) -> bool:
    moved = VolumeAttachment.objects.filter(pk=attachment.pk, status__in=from_).update(
        status=new, updated_at=timezone.now(), **changes)
    return moved == 1


def begin_attach(attachment_id: Any, *, host: str, mountpoint: str = "",
                 connector: dict[str, Any] | None = None) -> dict[str, Any]:
    """The compute host is about to plug it in: both move to `attaching`; the volume's
    connection (how the host's qemu reaches it). A volume not created yet (no connection) or an
    attachment no longer reserved is a 409."""
    with transaction.atomic():
        attachment = _attachment(attachment_id)
        if attachment is None:
            raise errors.NotFound(f"Attachment {attachment_id} could not be found.")
        volume = attachment.volume
        if not volume.connection:
            raise errors.Conflict(f"Volume {volume.pk} has no connection yet.")
        if not _move_attachment(attachment, st.ATTACH_ATTACHING,
                                frozenset({st.ATTACH_RESERVED, st.ATTACH_ATTACHING}),
                                attached_host=host, mountpoint=mountpoint or attachment.mountpoint,
                                connector=connector or {}):
            raise errors.Conflict(f"Attachment {attachment.pk} is {attachment.status}.")
        move(volume.pk, st.ATTACHING, only_from=frozenset({st.RESERVED}))
        return dict(volume.connection)


def complete(attachment_id: Any) -> bool:
    """The host plugged it in: the attachment `attached`, the volume `in-use`; False if it was
    not attaching (a repeated or stale report)."""
    with transaction.atomic():
        attachment = _attachment(attachment_id)
        if attachment is None or not _move_attachment(
                attachment, st.ATTACH_ATTACHED,
                frozenset({st.ATTACH_RESERVED, st.ATTACH_ATTACHING}), attach_time=timezone.now()):
            return False
        move(attachment.volume_id, st.IN_USE, only_from=frozenset({st.RESERVED, st.ATTACHING}),
             attach_status=st.ATTACHED)
        return True


def fail(attachment_id: Any, reason: str = "") -> bool:
    """The attach did not happen: the attachment goes and the volume is available again, its
    data untouched. False if there was nothing to undo."""
    with transaction.atomic():
        attachment = _attachment(attachment_id)
        if attachment is None or attachment.status not in (
                st.ATTACH_RESERVED, st.ATTACH_ATTACHING, st.ATTACH_ERROR):
            return False
        volume_id = attachment.volume_id
        attachment.delete()
        _settle(volume_id, reason=reason)
        return True


def begin_detach(attachment_id: Any) -> VolumeAttachment:
    """The server lets go: attachment and volume `detaching`. Not attached is a 400 (Nova's
    "Invalid volume" for a volume still attaching or already detaching)."""
    with transaction.atomic():
        attachment = _attachment(attachment_id)
        if attachment is None:
            raise errors.NotFound(f"Attachment {attachment_id} could not be found.")
        if not _move_attachment(attachment, st.ATTACH_DETACHING,
                                frozenset({st.ATTACH_ATTACHED})):
            raise errors.BadRequest(
                f"Invalid volume: Volume {attachment.volume_id} is {attachment.status}, not "
                "attached; it cannot be detached now.")
        move(attachment.volume_id, st.DETACHING, only_from=frozenset({st.IN_USE}))
        attachment.status = st.ATTACH_DETACHING
        return attachment


def detach_failed(attachment_id: Any) -> bool:
    """The guest kept the disk: attachment `attached`, the volume `in-use` again."""
    with transaction.atomic():
        attachment = _attachment(attachment_id)
        if attachment is None or not _move_attachment(
                attachment, st.ATTACH_ATTACHED, frozenset({st.ATTACH_DETACHING})):
            return False
        move(attachment.volume_id, st.IN_USE, only_from=frozenset({st.DETACHING}))
        return True


def remove(attachment_id: Any) -> bool:
    """The volume is off the server (a detach done, a server gone, Cinder's attachment delete):
    the attachment goes; the volume is available again once it has none left. False if it was
    gone already."""
    with transaction.atomic():
        attachment = _attachment(attachment_id)
        if attachment is None:
            return False
        volume_id = attachment.volume_id
        attachment.delete()
        _settle(volume_id)
        return True


def _settle(volume_id: Any, *, reason: str = "") -> None:
    """A volume left with no attachment is available and detached."""
    if VolumeAttachment.objects.filter(volume_id=volume_id).exists():
        return
    # A server gone (or Cinder's attachment delete) takes an in-use volume through detaching,
    # the one way the table lets a volume out of in-use.
    move(volume_id, st.DETACHING, only_from=frozenset({st.IN_USE}))
    move(volume_id, st.AVAILABLE,
         only_from=frozenset({st.RESERVED, st.ATTACHING, st.DETACHING}),
         attach_status=st.DETACHED, **({"status_reason": reason[:1000]} if reason else {}))


def of_instance(instance_uuid: str) -> list[VolumeAttachment]:
    return list(VolumeAttachment.objects.filter(instance_uuid=instance_uuid)
                .select_related("volume"))


def for_volume(volume_id: Any, instance_uuid: str) -> VolumeAttachment | None:
    parsed = parse_uuid(str(volume_id))
    if not parsed:
        return None
    return VolumeAttachment.objects.filter(volume_id=parsed, instance_uuid=instance_uuid).first()


def follow(instance_uuid: str, host: str) -> None:
    """The server now runs on `host` (a migration, evacuation or unshelve): its attachments say
    so, as Cinder's attachment is updated with the new host's connector."""
    if host:
        VolumeAttachment.objects.filter(instance_uuid=instance_uuid).exclude(
            attached_host=host).update(attached_host=host, updated_at=timezone.now())
