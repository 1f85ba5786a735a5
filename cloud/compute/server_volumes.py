"""A server's volumes (POST and DELETE /servers/{id}/os-volume_attachments, operations
"attach_volume" and "detach_volume"), and what its other paths do with them: the spawn request's
block devices, and the volumes given back when the server is deleted.

An attach reserves the volume (cloud.volumes.attachments: the volume `reserved`, then
`attaching`), records the block device mapping with the next free device name and asks the host
to plug the volume's export in; the host's report completes the attachment (the volume `in-use`)
or undoes it (the mapping goes, the volume is available again, its data untouched). A detach
moves the attachment to `detaching` and asks the host to take the disk out once the guest let go;
the report removes the mapping and the attachment (the volume available), or puts both back.
"""

from __future__ import annotations

import string
import uuid
from typing import Any

from django.db import transaction

from cloud import errors, rpc
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from cloud.volumes import attachments
from cloud.volumes import statuses as volume_statuses
from cloud.volumes import volumes as volume_service
from cloud.volumes.models import Volume, VolumeAttachment
from compute_agent import messages as msg

from .models import BlockDeviceMapping, Instance
from .operations import REGISTRY, runs
from .states import SHELVED_OFFLOADED
from .transitions import begin

ROOT_DEVICE = "vda"


def mappings_of(instance: Instance | str) -> list[BlockDeviceMapping]:
    uuid_ = instance.uuid if isinstance(instance, Instance) else instance
    return list(BlockDeviceMapping.objects.filter(instance_id=uuid_).order_by("id"))


def _device(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def next_device(instance: Instance) -> str:
    """The first free vdX after vda (the root disk, local or a volume), as Nova's libvirt picks."""
    used = {_device(m.device_name) for m in mappings_of(instance)} | {ROOT_DEVICE}
    for letter in string.ascii_lowercase[1:]:
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise errors.BadRequest("The server has no free device name for another volume.")


def mapping_for(instance: Instance, volume_id: str) -> BlockDeviceMapping:
    parsed = parse_uuid(volume_id)
    found = (BlockDeviceMapping.objects.filter(instance_id=instance.uuid, volume_id=parsed).first()
             if parsed else None)
    if found is None:
        raise errors.NotFound(f"Instance {instance.uuid} is not attached to volume {volume_id}.")
    return found


def visible_volume(ctx: RequestContext, volume_id: str) -> Volume:
    """The volume, if the caller's project owns it (an admin: any); otherwise Cinder's 404."""
    parsed = parse_uuid(volume_id)
    rows = Volume.objects.all() if ctx.is_admin else Volume.objects.filter(
        project_id=ctx.project_id)
    volume = rows.filter(pk=parsed).first() if parsed else None
    if volume is None:
        raise errors.NotFound(f"Volume {volume_id} could not be found.")
    return volume


def block_device(mapping: BlockDeviceMapping, volume: Volume) -> msg.BlockDevice:
    return msg.BlockDevice(volume_id=str(volume.pk), device=_device(mapping.device_name),
                           connection=dict(volume.connection),
                           boot_index=-1 if mapping.boot_index is None else mapping.boot_index)


def block_devices_of(instance: Instance) -> list[msg.BlockDevice]:
    """The server's volumes as its host must give them to the guest (a spawn anywhere: a build,
    a move, an unshelve, an evacuation); a mapping whose volume is not made yet is left out."""
    mappings = [m for m in mappings_of(instance) if m.volume_id]
    volumes = Volume.objects.in_bulk([m.volume_id for m in mappings])
    devices = [block_device(m, volumes[m.volume_id]) for m in mappings
               if m.volume_id in volumes and volumes[m.volume_id].connection]
    return sorted(devices, key=lambda d: (d.boot_index != 0, d.device))


def boots_from_volume(instance: Instance) -> bool:
    return BlockDeviceMapping.objects.filter(instance_id=instance.uuid, boot_index=0,
                                             destination_type="volume").exists()


def boot_volume_image(instance: Instance) -> str:
    """The image a volume-backed server's root volume was made from ("" if none, or not
    volume-backed): the image a rebuild may name (Nova before 2.93 re-images no volume)."""
    mapping = BlockDeviceMapping.objects.filter(instance_id=instance.uuid, boot_index=0,
                                                destination_type="volume").first()
    if mapping is None or mapping.volume_id is None:
        return ""
    image_id = Volume.objects.filter(pk=mapping.volume_id).values_list("image_id", flat=True)
    return str(image_id.first() or mapping.image_id or "")


def refuse_volume_backed(instance: Instance, what: str, *, conflict: bool = True) -> None:
    """What works on a local root disk only (its copy to an image, a rescue beside it) is
    refused for a server whose root disk is a volume, saying so: 409, or Nova's 400."""
    if boots_from_volume(instance):
        reason = (f"Cannot {what} server {instance.uuid}: its root disk is a volume, and this "
                  "cloud does not yet do that for volume-backed servers (snapshot the volume "
                  "with the Block Storage API instead).")
        raise errors.Conflict(reason) if conflict else errors.BadRequest(reason)


@runs("attach_volume")
def attach_volume(
    ctx: RequestContext,
    instance: Instance,
    volume_id: str,
    tag: str | None = None,
    delete_on_termination: bool = False,
) -> BlockDeviceMapping:
    """Reserve the volume, record where the guest sees it and have the host plug it in; the
    mapping (its device name is what the API answers)."""
    volume = visible_volume(ctx, volume_id)
    if BlockDeviceMapping.objects.filter(instance_id=instance.uuid, volume_id=volume.pk).exists():
        raise errors.BadRequest(f"Invalid volume: volume {volume.pk} is already attached to "
                                f"instance {instance.uuid}.")
    if instance.vm_state == SHELVED_OFFLOADED:
        return _attach_offloaded(ctx, instance, volume, tag, delete_on_termination)
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["attach_volume"])
        device = next_device(row)
        attachment = attachments.reserve(volume.pk, str(row.uuid), mountpoint=f"/dev/{device}")
        try:
            connection = attachments.begin_attach(attachment.pk, host=row.host or "",
                                                  mountpoint=f"/dev/{device}")
        except errors.Conflict as exc:
            raise errors.BadRequest(f"Invalid volume: {exc}") from exc
        mapping = BlockDeviceMapping.objects.create(
            instance=row, volume_id=volume.pk, device_name=f"/dev/{device}", tag=tag,
            delete_on_termination=delete_on_termination, attachment_id=attachment.pk,
            volume_size=volume.size)
        rpc.to_host(row.host, msg.TASK_ATTACH_VOLUME, msg.VolumeAttachRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid),
            device=msg.BlockDevice(volume_id=str(volume.pk), device=device,
                                   connection=connection),
            attachment_id=str(attachment.pk)))
    return mapping


def _attach_offloaded(ctx: RequestContext, instance: Instance, volume: Volume, tag: str | None,
                      delete_on_termination: bool) -> BlockDeviceMapping:
    """No host holds the guest: the volume is in use by the server at once, and its unshelve
    spawns the guest with it."""
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["attach_volume_offloaded"])
        device = next_device(row)
        attachment = attachments.reserve(volume.pk, str(row.uuid), mountpoint=f"/dev/{device}")
        attachments.complete(attachment.pk)
        return BlockDeviceMapping.objects.create(
            instance=row, volume_id=volume.pk, device_name=f"/dev/{device}", tag=tag,
            delete_on_termination=delete_on_termination, attachment_id=attachment.pk,
            volume_size=volume.size)


@runs("detach_volume")
def detach_volume(ctx: RequestContext, instance: Instance, volume_id: str) -> None:
    """Have the host take the volume out once the guest released it; the root volume stays."""
    mapping = mapping_for(instance, volume_id)
    if mapping.boot_index == 0:
        raise errors.BadRequest("Cannot detach a root device volume")
    if instance.vm_state == SHELVED_OFFLOADED:
        with transaction.atomic():
            begin(ctx, instance, REGISTRY["detach_volume_offloaded"])
            if mapping.attachment_id:
                attachments.begin_detach(mapping.attachment_id)
                attachments.remove(mapping.attachment_id)
            mapping.delete()
        return
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["detach_volume"])
        if mapping.attachment_id:
            attachments.begin_detach(mapping.attachment_id)
        rpc.to_host(row.host, msg.TASK_DETACH_VOLUME, msg.VolumeAttachRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid),
            device=msg.BlockDevice(volume_id=str(mapping.volume_id),
                                   device=_device(mapping.device_name)),
            attachment_id=str(mapping.attachment_id or "")))


def set_delete_on_termination(ctx: RequestContext, instance: Instance, volume_id: str,
                              delete_on_termination: bool) -> BlockDeviceMapping:
    """PUT os-volume_attachments/{volume} without a swap (2.85): the flag alone."""
    mapping = mapping_for(instance, volume_id)
    mapping.delete_on_termination = delete_on_termination
    mapping.save(update_fields=["delete_on_termination"])
    return mapping


# --- the host's reports (cloud/conductor/operation_events.py)


def _mapping(instance_uuid: str, volume_id: str,
             in_status: str | None = None) -> BlockDeviceMapping | None:
    """The server's mapping of the volume; without a volume id (a failure the reconciler
    reports for a host that never answered), the one whose attachment is `in_status`."""
    if not volume_id and in_status is not None:
        busy = VolumeAttachment.objects.filter(
            instance_uuid=instance_uuid, status=in_status).values_list("id", flat=True)
        return BlockDeviceMapping.objects.filter(instance_id=instance_uuid,
                                                 attachment_id__in=list(busy)).first()
    parsed = parse_uuid(volume_id)
    if parsed is None:
        return None
    return BlockDeviceMapping.objects.filter(instance_id=instance_uuid, volume_id=parsed).first()


def attached(instance_uuid: str, volume_id: str) -> None:
    mapping = _mapping(instance_uuid, volume_id)
    if mapping is not None and mapping.attachment_id:
        attachments.complete(mapping.attachment_id)


def attach_failed(instance_uuid: str, volume_id: str, reason: str = "") -> None:
    """The host could not plug it in: no mapping, and the volume is available again."""
    mapping = _mapping(instance_uuid, volume_id, volume_statuses.ATTACH_ATTACHING)
    if mapping is None:
        return
    if mapping.attachment_id:
        attachments.fail(mapping.attachment_id, reason)
    mapping.delete()


def detached(instance_uuid: str, volume_id: str) -> None:
    mapping = _mapping(instance_uuid, volume_id)
    if mapping is None:
        return
    if mapping.attachment_id:
        attachments.remove(mapping.attachment_id)
    mapping.delete()


def detach_failed(instance_uuid: str, volume_id: str) -> None:
    mapping = _mapping(instance_uuid, volume_id, volume_statuses.ATTACH_DETACHING)
    if mapping is not None and mapping.attachment_id:
        attachments.detach_failed(mapping.attachment_id)


# --- a server's end


def owner_context(instance: Instance, request_id: str = "") -> RequestContext:
    """As whom the system acts on a server's volumes: its own user and project, with the
    operator's role (the user may have lost theirs since)."""
    return RequestContext(user_id=str(instance.user_id), user_name="",
                          project_id=str(instance.project_id), project_name=None,
                          roles=("admin",),
                          request_id=request_id or f"req-{uuid.uuid4()}")


def release_all(instance_uuid: str) -> list[str]:
    """The server is gone: every volume's attachment goes (each volume is available again, its
    data kept) and those marked delete_on_termination are deleted; the ids deleted."""
    deleted: list[str] = []
    mappings = mappings_of(instance_uuid)
    if not mappings:
        return deleted
    ctx = owner_context(Instance.objects.get(uuid=instance_uuid))
    for mapping in mappings:
        if mapping.attachment_id:
            attachments.remove(mapping.attachment_id)
        if mapping.volume_id and mapping.delete_on_termination:
            try:
                volume_service.delete_volume(ctx, mapping.volume_id)
                deleted.append(str(mapping.volume_id))
            except (errors.BadRequest, errors.NotFound, errors.Conflict):
                pass  # it has snapshots, or went already: it stays, as Cinder would keep it
        mapping.delete()
    return deleted


def volumes_of_servers(uuids: list[str]) -> dict[str, list[tuple[str, bool]]]:
    """Each server's volumes as (volume id, delete_on_termination), in one query: what its body
    shows as os-extended-volumes:volumes_attached."""
    found: dict[str, list[tuple[str, bool]]] = {}
    if uuids:
        for instance_id, volume_id, delete in BlockDeviceMapping.objects.filter(
                instance_id__in=uuids).exclude(volume_id=None).order_by("id").values_list(
                "instance_id", "volume_id", "delete_on_termination"):
            found.setdefault(str(instance_id), []).append((str(volume_id), delete))
    return found


def api_view(mapping: BlockDeviceMapping) -> dict[str, Any]:
    """The fields every version's shape is cut from (cloud/api/compute/volume_attachments.py)."""
    return {
        "id": str(mapping.volume_id), "volumeId": str(mapping.volume_id),
        "serverId": str(mapping.instance_id), "device": mapping.device_name,
        "tag": mapping.tag, "delete_on_termination": mapping.delete_on_termination,
        "attachment_id": str(mapping.attachment_id) if mapping.attachment_id else None,
        "bdm_uuid": str(mapping.uuid),
    }
