"""Boot from volume: the volumes a server create asks for (block_device_mapping_v2, or the legacy
block_device_mapping), checked with Nova's rules and 400s, made through the volume service, and
the build held in task `block_device_mapping` until each is available; then it is scheduled.

A server whose boot_index 0 device is a volume has no local root disk: its image_ref is empty,
its root_gb 0 (the flavor's disk is not claimed on the host, as Nova's claims take root_gb 0 for
a volume-backed server), and its host gets the volumes as the spawn request's block devices.
The attachments are reserved once the volumes are available and completed when the host reports
the guest running; a server deleted lets them go (server_volumes.release_all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from cloud import errors, events, rpc
from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid
from cloud.volumes import attachments
from cloud.volumes import statuses as volume_statuses
from cloud.volumes import volumes as volume_service
from cloud.volumes.models import Volume, VolumeSnapshot

from . import states
from .models import BlockDeviceMapping, Instance, InstanceFault
from .server_volumes import visible_volume

SOURCES = ("image", "volume", "snapshot", "blank")
DESTINATIONS = ("local", "volume")
INVALID = "Block Device Mapping is Invalid: {}"
BAD_BOOT_SEQUENCE = ("Boot sequence for the instance and image/block device mapping combination "
                     "is not valid.")


@dataclass
class DeviceRequest:
    """One requested block device that is, or becomes, a volume."""

    source_type: str
    uuid: str = ""
    boot_index: int | None = None
    volume_size: int | None = None
    delete_on_termination: bool = False
    device_name: str = ""
    tag: str | None = None
    volume_type: str | None = None  # 2.67


def _invalid(reason: str) -> errors.BadRequest:
    return errors.BadRequest(INVALID.format(reason))


def _boot_index(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Boot index {value!r} is invalid.") from None
    return None if index < 0 else index


def _size(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Volume size {value!r} is invalid.") from None
    if size < 0:
        raise _invalid(f"Volume size {value!r} is invalid.")
    return size or None


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes", "on") if not isinstance(value, bool) else value


def parse(server: dict) -> tuple[str, list[DeviceRequest]]:
    """The image a server boots from ("" when it boots from a volume) and the volumes it asks
    for, from its create body; Nova's 400s for what cannot be."""
    image_ref = server.get("imageRef") or ""
    devices: list[DeviceRequest] = []
    local_root = False
    for bdm in server.get("block_device_mapping_v2") or []:
        source = bdm.get("source_type")
        destination = bdm.get("destination_type") or "local"
        boot_index = _boot_index(bdm.get("boot_index"))
        if source not in SOURCES or destination not in DESTINATIONS:
            raise _invalid(f"source_type {source!r} with destination_type {destination!r} "
                           "is not a valid mapping.")
        if destination == "local":
            if source == "image" and boot_index == 0:
                image_ref = image_ref or bdm.get("uuid") or bdm.get("image_id", "")
                local_root = True
                continue
            raise errors.BadRequest(
                "Local block devices other than the image's root disk (ephemeral disks, swap) "
                "are not supported: give the flavor an ephemeral size instead.")
        uuid = str(bdm.get("uuid") or "")
        if source != "blank" and not canonical_uuid(uuid):
            raise _invalid(f"a {source} mapping needs the {source}'s uuid.")
        size = _size(bdm.get("volume_size"))
        if source in ("image", "blank") and size is None:
            raise _invalid(f"Images and blank volumes with destination_type 'volume' need to "
                           f"have a non-zero size specified (source_type {source}).")
        devices.append(DeviceRequest(
            source_type=source, uuid=uuid, boot_index=boot_index, volume_size=size,
            delete_on_termination=_flag(bdm.get("delete_on_termination", False)),
            device_name=str(bdm.get("device_name") or ""), tag=bdm.get("tag"),
            volume_type=bdm.get("volume_type")))
    for legacy in server.get("block_device_mapping") or []:
        devices.append(_legacy(legacy))
    _check_boot_sequence(devices, local_root)
    if any(d.boot_index == 0 for d in devices):
        return "", devices
    if not image_ref:
        raise errors.BadRequest("Missing imageRef attribute")
    return image_ref, devices


def _legacy(bdm: dict) -> DeviceRequest:
    """Nova's first block_device_mapping: a volume or a snapshot by id, the root one when its
    device is the root device's name (vda)."""
    device = str(bdm.get("device_name") or "")
    root = device.rsplit("/", 1)[-1] in ("vda", "sda", "xvda", "hda")
    if bdm.get("no_device"):
        raise _invalid("no_device mappings are not supported.")
    if bdm.get("snapshot_id"):
        source, uuid = "snapshot", str(bdm["snapshot_id"])
    elif bdm.get("volume_id"):
        source, uuid = "volume", str(bdm["volume_id"])
    else:
        raise _invalid("a legacy mapping needs a volume_id or a snapshot_id.")
    if not canonical_uuid(uuid):
        raise _invalid(f"{uuid!r} is not an id.")
    return DeviceRequest(source_type=source, uuid=uuid, boot_index=0 if root else None,
                         volume_size=_size(bdm.get("volume_size")),
                         delete_on_termination=_flag(bdm.get("delete_on_termination", False)),
                         device_name=device)


def _check_boot_sequence(devices: list[DeviceRequest], local_root: bool) -> None:
    indexes = sorted(d.boot_index for d in devices if d.boot_index is not None)
    if local_root:
        indexes = sorted([0, *indexes])
    if indexes and indexes != list(range(len(indexes))):
        raise errors.BadRequest(BAD_BOOT_SEQUENCE)


def boot_device(devices: list[DeviceRequest]) -> DeviceRequest | None:
    return next((d for d in devices if d.boot_index == 0), None)


def check(ctx: RequestContext, devices: list[DeviceRequest], *, count: int,
          image_check: Any) -> None:
    """Before anything is made: the volumes and snapshots exist for the caller and can be used,
    an image is usable (`image_check(ctx, image_id, size)`), one volume is not asked for by
    several servers."""
    for device in devices:
        if device.source_type == "volume":
            if count > 1:
                raise errors.BadRequest("Cannot attach one or more volumes to multiple "
                                        "instances")
            volume = visible_volume(ctx, device.uuid)
            if volume.status != volume_statuses.AVAILABLE:
                raise errors.BadRequest(
                    f"Invalid volume: volume {volume.pk} status must be available, but the "
                    f"current status is {volume.status}.")
            if device.boot_index == 0 and not volume.bootable:
                # Nova's InvalidBDMVolumeNotBootable: a blank or data volume holds no system.
                raise errors.BadRequest(f"Block Device {volume.pk} is not bootable.")
        elif device.source_type == "snapshot":
            snapshot = _snapshot(ctx, device.uuid)
            if snapshot.status != volume_statuses.AVAILABLE:
                raise errors.BadRequest(f"Invalid snapshot: snapshot {snapshot.pk} is "
                                        f"{snapshot.status}.")
        elif device.source_type == "image":
            image_check(ctx, device.uuid, device.volume_size or 0)


def _snapshot(ctx: RequestContext, snapshot_id: str) -> VolumeSnapshot:
    uuid = canonical_uuid(snapshot_id)
    rows = VolumeSnapshot.objects.all() if ctx.is_admin else VolumeSnapshot.objects.filter(
        project_id=ctx.project_id)
    snapshot = rows.filter(pk=uuid).first() if uuid else None
    if snapshot is None:
        raise errors.BadRequest(f"Snapshot {snapshot_id} could not be found.")
    return snapshot


def _device_names(devices: list[DeviceRequest]) -> list[str]:
    """vda for the boot volume, then vdb, vdc… in the order given."""
    names, letter = [], ord("b")
    for device in devices:
        if device.boot_index == 0:
            names.append("/dev/vda")
        else:
            names.append(f"/dev/vd{chr(letter)}")
            letter += 1
    return names


def prepare(ctx: RequestContext, instance: Instance, devices: list[DeviceRequest]) -> bool:
    """Record the server's mappings and ask for the volumes it needs made; whether every volume
    is available already (then it may be scheduled at once)."""
    for device, name in zip(devices, _device_names(devices), strict=True):
        volume_id = device.uuid if device.source_type == "volume" else None
        if device.source_type != "volume":
            body: dict[str, Any] = {"size": device.volume_size,
                                    "name": f"{instance.display_name}-{name.rsplit('/', 1)[-1]}"}
            if device.volume_type:
                body["volume_type"] = device.volume_type
            if device.source_type == "image":
                body["imageRef"] = device.uuid
            elif device.source_type == "snapshot":
                body["snapshot_id"] = device.uuid
            try:
                made = volume_service.create_volume(ctx, body)
            except errors.NotFound as exc:  # a volume type or image that is not there
                raise errors.BadRequest(str(exc)) from exc
            if made.status == volume_statuses.ERROR:
                # No volume host can hold it: refused now rather than a build that cannot end.
                raise errors.BadRequest(f"Volume for {name} could not be made: "
                                        f"{made.status_reason}")
            volume_id = str(made.pk)
        BlockDeviceMapping.objects.create(
            instance=instance, volume_id=volume_id, device_name=name,
            boot_index=device.boot_index, source_type=device.source_type,
            destination_type="volume", delete_on_termination=device.delete_on_termination,
            tag=device.tag, volume_size=device.volume_size,
            image_id=device.uuid if device.source_type == "image" else "",
            snapshot_id=device.uuid if device.source_type == "snapshot" else "")
    return _reserve_if_ready(instance)


def _reserve_if_ready(instance: Instance) -> bool:
    """When every volume of the server is available: reserve each for it; True. False while one
    is still being made."""
    mappings = list(BlockDeviceMapping.objects.filter(instance=instance, attachment_id=None))
    volumes = Volume.objects.in_bulk([m.volume_id for m in mappings])
    if any(volumes.get(m.volume_id) is None or volumes[m.volume_id].status
           != volume_statuses.AVAILABLE for m in mappings):
        return False
    for mapping in mappings:
        attachment = attachments.reserve(mapping.volume_id, str(instance.uuid),
                                         mountpoint=mapping.device_name)
        mapping.attachment_id = attachment.pk
        mapping.save(update_fields=["attachment_id"])
    return True


def volume_changed(volume_id: str) -> None:
    """A volume became available or failed (the conductor's volume event): a build waiting for
    it is scheduled once all its volumes are there, or fails if one cannot be made."""
    uuid = canonical_uuid(volume_id)
    if uuid is None:
        return
    for instance_uuid in BlockDeviceMapping.objects.filter(volume_id=uuid).values_list(
            "instance_id", flat=True):
        check_waiting(str(instance_uuid))


def check_waiting(instance_uuid: str) -> None:
    with transaction.atomic():
        instance = (Instance.objects.select_for_update()
                    .filter(uuid=instance_uuid, deleted=False,
                            task_state=states.BLOCK_DEVICE_MAPPING).first())
        if instance is None:
            return
        ids = BlockDeviceMapping.objects.filter(instance=instance).values_list("volume_id",
                                                                              flat=True)
        failed = Volume.objects.filter(pk__in=list(ids), status=volume_statuses.ERROR).first()
        if failed is not None:
            _fail_build(instance, f"Volume {failed.pk} could not be made: "
                                  f"{failed.status_reason or 'the volume host failed'}")
            return
        if not _reserve_if_ready(instance):
            return
        Instance.objects.filter(pk=instance.pk, task_state=states.BLOCK_DEVICE_MAPPING).update(
            task_state=states.SCHEDULING, updated_at=timezone.now())
        events.instance_changed(instance.uuid)
        rpc.schedule_instance(str(instance.uuid), f"req-bdm-{str(instance.uuid)[:8]}")


def _fail_build(instance: Instance, reason: str) -> None:
    Instance.objects.filter(pk=instance.pk).update(vm_state=states.ERROR, task_state=None,
                                                   updated_at=timezone.now())
    InstanceFault.objects.create(instance=instance, code=500, message=reason[:255],
                                 details=reason, host="")
    events.instance_changed(instance.uuid)


def check_all_waiting() -> int:
    """The reconciler's pass: every build still waiting for its volumes is looked at again (a
    volume event missed, a volume made by an admin's reset); how many there were."""
    waiting = list(Instance.objects.filter(deleted=False, task_state=states.BLOCK_DEVICE_MAPPING)
                   .values_list("uuid", flat=True))
    for instance_uuid in waiting:
        check_waiting(str(instance_uuid))
    return len(waiting)


def spawned(instance_uuid: str, host: str) -> None:
    """The guest runs on `host` with its volumes: their attachments are complete (in-use)."""
    mappings = list(BlockDeviceMapping.objects.filter(instance_id=instance_uuid).exclude(
        attachment_id=None))
    if not mappings:
        return  # most boots: nothing attached, and nothing more to ask the database
    for mapping in mappings:
        try:
            attachments.begin_attach(mapping.attachment_id, host=host,
                                     mountpoint=mapping.device_name)
        except (errors.Conflict, errors.NotFound):
            continue  # attached already (a move's spawn), or let go meanwhile
        attachments.complete(mapping.attachment_id)
    # A spawn after a move (evacuation, unshelve, reschedule) finds them attached already.
    attachments.follow(instance_uuid, host)
