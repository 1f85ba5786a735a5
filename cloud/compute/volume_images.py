"""Nova's image of a volume-backed server, and the boot from one.

createImage of a server whose root disk is a volume copies no disk: each of its volumes is
snapshotted through the volume service (forced, so an in-use volume may be; Kumo asks the guest
for no quiesce first, as Nova does without a guest agent), and the image is a bucket of
properties with no data (size 0, active at once, qcow2/bare as Nova's image client sets them)
whose `block_device_mapping` names the snapshots. No host task runs and the server's state does
not change; the InstanceAction is recorded. Deleting the image leaves the snapshots (as Nova).

A server created with such an image as its imageRef boots from new volumes made from those
snapshots (boot_volumes, source snapshot → volume), the mapping's boot_index 0 its root, and has
no image of its own.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.images import images as image_services
from cloud.images.models import Image
from cloud.volumes import snapshots as volume_snapshots
from cloud.volumes.models import Volume

from . import disk_images
from .action_records import record_action
from .boot_volumes import INVALID, DeviceRequest
from .models import BlockDeviceMapping, Instance
from .operations import LOCKED_REFUSES, REGISTRY
from .transitions import ensure_unlocked, locked_row, refusal

ROOT_DEVICE = "/dev/vda"
# Never copied into a snapshot (Nova's NON_INHERITABLE_IMAGE_PROPERTIES: an image signature
# signs the source's bytes, not these).
_NOT_INHERITED = frozenset({"img_signature", "img_signature_hash_method",
                            "img_signature_key_type", "img_signature_certificate_uuid"})
# Keys of Cinder's volume_image_metadata that are the source image's attributes, not properties.
_IMAGE_ATTRIBUTES = frozenset({"image_id", "image_name", "size", "checksum", "container_format",
                               "disk_format", "min_ram", "min_disk"})


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _boot_index(value: Any) -> int | None:
    try:
        index = int(value)
    except (TypeError, ValueError):
        return None
    return index if index >= 0 else None


def _inherited(root: Volume | None) -> tuple[dict[str, str], int, int]:
    """The root volume's image properties as Nova copies them into the snapshot, and the
    source image's min_ram and min_disk."""
    meta = dict(root.image_metadata or {}) if root is not None else {}
    properties = {str(k): str(v) for k, v in meta.items()
                  if k not in _IMAGE_ATTRIBUTES and k not in _NOT_INHERITED
                  and not str(k).startswith("os_glance")}
    return properties, _int(meta.get("min_ram")), _int(meta.get("min_disk"))


def create_image(ctx: RequestContext, instance: Instance, name: str,
                 metadata: dict[str, str] | None = None) -> str:
    """Snapshot every volume of a volume-backed server and write the image that names them;
    its id. All in one transaction: a volume that cannot be snapshotted (Cinder's 400, or its
    quota) leaves no snapshot and no image."""
    operation = REGISTRY["snapshot"]
    with transaction.atomic():
        row = locked_row(instance)
        if operation.locked == LOCKED_REFUSES:
            ensure_unlocked(ctx, row)
        if not operation.allows(row.vm_state, row.task_state):
            raise refusal(operation, row)
        assert operation.record is not None
        record_action(ctx, row, operation.record)
        mappings = list(BlockDeviceMapping.objects.filter(instance=row)
                        .exclude(volume_id=None).order_by("device_name"))
        volumes = Volume.objects.in_bulk([m.volume_id for m in mappings])
        root = next((volumes.get(m.volume_id) for m in mappings if m.boot_index == 0), None)
        properties, min_ram, min_disk = _inherited(root)
        bdms = []
        for mapping in mappings:
            volume = volumes[mapping.volume_id]
            snapshot = volume_snapshots.create_snapshot(ctx, {
                "volume_id": str(volume.pk), "force": True,
                "name": f"snapshot for {name}"[:255], "description": volume.description})
            # Nova's snapshot_from_bdm(...).get_image_mapping(): no volume_id, no attachment.
            bdms.append({
                "source_type": "snapshot", "destination_type": "volume",
                "snapshot_id": str(snapshot.pk), "boot_index": mapping.boot_index,
                "device_name": mapping.device_name, "volume_size": volume.size,
                "delete_on_termination": mapping.delete_on_termination, "tag": mapping.tag,
            })
        properties.update({k: v for k, v in (metadata or {}).items()
                           if k not in image_services.CORE})
        properties.update({"block_device_mapping": json.dumps(bdms), "bdm_v2": "True",
                           "root_device_name": ROOT_DEVICE})
        image = image_services.create_image_without_data(ctx, {
            "name": name, "disk_format": "qcow2", "container_format": "bare",
            "visibility": disk_images.visibility_for(ctx, row),
            "min_ram": min_ram, "min_disk": min_disk, **properties,
        })
        disk_images.offer_to_owner(ctx, image, row)
    return str(image.id)


def is_volume_snapshot(image: Image) -> bool:
    """An image that is a volume-backed server's snapshot: no data, a block device mapping."""
    return bool((image.properties or {}).get("block_device_mapping")) and not image.size


def _mappings(image: Image) -> list[dict]:
    raw = (image.properties or {}).get("block_device_mapping")
    try:
        mappings = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        mappings = None
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise errors.BadRequest(INVALID.format(
            f"image {image.id} has a block_device_mapping that is not a list of mappings."))
    return mappings


def devices_from(image: Image, requested: list[DeviceRequest]) -> list[DeviceRequest]:
    """The block devices a boot from a volume snapshot image gets: the image's mappings (a
    snapshot becomes a new volume), then those the request adds; one the request names by the
    same device name replaces the image's, as Nova merges them."""
    named = {d.device_name for d in requested if d.device_name}
    devices = []
    for bdm in _mappings(image):
        if bdm.get("no_device") or bdm.get("destination_type", "volume") != "volume":
            continue
        source = bdm.get("source_type")
        uuid = bdm.get("snapshot_id") if source == "snapshot" else bdm.get(f"{source}_id")
        if source not in ("snapshot", "volume") or not uuid:
            raise errors.BadRequest(INVALID.format(
                f"image {image.id} maps a {source!r} device this cloud cannot make."))
        device_name = str(bdm.get("device_name") or "")
        if device_name and device_name in named:
            continue
        devices.append(DeviceRequest(
            source_type=source, uuid=str(uuid), boot_index=_boot_index(bdm.get("boot_index")),
            volume_size=_int(bdm.get("volume_size")) or None,
            delete_on_termination=bool(bdm.get("delete_on_termination")),
            device_name=device_name, tag=bdm.get("tag")))
    if not any(d.boot_index == 0 for d in [*devices, *requested]):
        raise errors.BadRequest(INVALID.format(f"image {image.id} maps no boot device."))
    return [*devices, *requested]
