"""Block storage (issue 17, contract 1.9): what the control plane asks of a volume host, what a
volume host reports, and how a compute host is told to attach a volume to a guest.

A volume host (`python -m compute_agent volume …`) keeps every volume as a qcow2 file and exports
each one over NBD for its whole life (docs/volumes.md). How a guest reaches a volume is its
`connection`: {"driver_volume_type": "nbd", "host": IP, "port": PORT, "export": VOLUME_ID}. The
control plane stores it with the volume and hands it to whichever compute host attaches it, so a
volume follows its guest to any host without being copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compute_agent.messages.base import _NESTED, Message

# BlockDevice, a compute host's piece of this contract, is defined beside the SpawnRequest that
# carries it (and exported here too).
from compute_agent.messages.requests import BlockDevice, ImageRef

__all__ = [
    "ACTION_ATTACH_VOLUME",
    "ACTION_DETACH_VOLUME",
    "EVENT_VOLUME_ACTION_FAILED",
    "EVENT_VOLUME_ATTACHED",
    "EVENT_VOLUME_CREATED",
    "EVENT_VOLUME_DELETED",
    "EVENT_VOLUME_DETACHED",
    "EVENT_VOLUME_EXTENDED",
    "EVENT_VOLUME_SNAPSHOT_CREATED",
    "EVENT_VOLUME_SNAPSHOT_DELETED",
    "EVENT_VOLUME_UPLOADED",
    "SOURCE_BLANK",
    "SOURCE_IMAGE",
    "SOURCE_SNAPSHOT",
    "SOURCE_VOLUME",
    "TASK_ATTACH_VOLUME",
    "TASK_CREATE_VOLUME",
    "TASK_CREATE_VOLUME_SNAPSHOT",
    "TASK_DELETE_VOLUME",
    "TASK_DELETE_VOLUME_SNAPSHOT",
    "TASK_DETACH_VOLUME",
    "TASK_EXTEND_VOLUME",
    "TASK_UPLOAD_VOLUME",
    "TASK_VOLUME_EVENT",
    "TASK_VOLUME_HOST_REPORT",
    "VOLUME_ACTION_CREATE",
    "VOLUME_ACTION_CREATE_SNAPSHOT",
    "VOLUME_ACTION_DELETE",
    "VOLUME_ACTION_DELETE_SNAPSHOT",
    "VOLUME_ACTION_EXTEND",
    "VOLUME_ACTION_UPLOAD",
    "VOLUME_QUEUE_PREFIX",
    "BlockDevice",
    "VolumeAttachRequest",
    "VolumeEvent",
    "VolumeHostReport",
    "VolumeRequest",
    "volume_queue",
]

VOLUME_QUEUE_PREFIX = "volume."

# A volume host's tasks. Each answers with one VolumeEvent: the task's own event on success,
# EVENT_VOLUME_ACTION_FAILED (with `action` and `message`) otherwise. All are idempotent: a
# repeated create of a volume that exists with its size, or a delete of one that is gone, succeeds.
TASK_CREATE_VOLUME = "volume.create"  # VolumeRequest -> EVENT_VOLUME_CREATED
TASK_DELETE_VOLUME = "volume.delete"  # VolumeRequest -> EVENT_VOLUME_DELETED
TASK_EXTEND_VOLUME = "volume.extend"  # VolumeRequest (size_gb: the new size) -> EVENT_VOLUME_EXTENDED
TASK_CREATE_VOLUME_SNAPSHOT = "volume.create_snapshot"  # -> EVENT_VOLUME_SNAPSHOT_CREATED
TASK_DELETE_VOLUME_SNAPSHOT = "volume.delete_snapshot"  # -> EVENT_VOLUME_SNAPSHOT_DELETED
# The volume's data into an image that exists in `queued` (Cinder's os-volume_upload_image).
TASK_UPLOAD_VOLUME = "volume.upload_to_image"  # VolumeRequest (image) -> EVENT_VOLUME_UPLOADED

# What a volume host sends the conductor.
TASK_VOLUME_HOST_REPORT = "conductor.volume_host_report"  # VolumeHostReport, every heartbeat
TASK_VOLUME_EVENT = "conductor.volume_event"  # VolumeEvent

EVENT_VOLUME_CREATED = "volume_created"  # VolumeEvent.size_gb, .connection
EVENT_VOLUME_DELETED = "volume_deleted"
EVENT_VOLUME_EXTENDED = "volume_extended"  # VolumeEvent.size_gb: the new size
EVENT_VOLUME_SNAPSHOT_CREATED = "volume_snapshot_created"  # VolumeEvent.snapshot_id
EVENT_VOLUME_SNAPSHOT_DELETED = "volume_snapshot_deleted"
EVENT_VOLUME_UPLOADED = "volume_uploaded"  # VolumeEvent.image_id
EVENT_VOLUME_ACTION_FAILED = "volume_action_failed"  # VolumeEvent.action, .message

VOLUME_ACTION_CREATE = "create"
VOLUME_ACTION_DELETE = "delete"
VOLUME_ACTION_EXTEND = "extend"
VOLUME_ACTION_CREATE_SNAPSHOT = "create_snapshot"
VOLUME_ACTION_DELETE_SNAPSHOT = "delete_snapshot"
VOLUME_ACTION_UPLOAD = "upload"

# Where a new volume's data comes from (VolumeRequest.source).
SOURCE_BLANK = ""
SOURCE_IMAGE = "image"  # VolumeRequest.image: the image to download
SOURCE_SNAPSHOT = "snapshot"  # .source_volume_id holds .snapshot_id
SOURCE_VOLUME = "volume"  # a copy of .source_volume_id as it is now

# A compute host's side: plug a volume into a guest or pull it out. Each answers with one
# InstanceEvent: EVENT_VOLUME_ATTACHED / EVENT_VOLUME_DETACHED (InstanceEvent.volume_id), or
# EVENT_ACTION_FAILED with ACTION_ATTACH_VOLUME / ACTION_DETACH_VOLUME.
TASK_ATTACH_VOLUME = "compute.attach_volume"  # VolumeAttachRequest -> EVENT_VOLUME_ATTACHED
TASK_DETACH_VOLUME = "compute.detach_volume"  # VolumeAttachRequest -> EVENT_VOLUME_DETACHED
EVENT_VOLUME_ATTACHED = "volume_attached"
EVENT_VOLUME_DETACHED = "volume_detached"
ACTION_ATTACH_VOLUME = "attach_volume"
ACTION_DETACH_VOLUME = "detach_volume"


def volume_queue(host: str) -> str:
    return f"{VOLUME_QUEUE_PREFIX}{host}"


@dataclass
class VolumeRequest(Message):
    request_id: str
    volume_id: str
    size_gb: int = 0  # create: at least this (a source may be larger); extend: the new size
    source: str = SOURCE_BLANK
    source_volume_id: str = ""
    snapshot_id: str = ""  # the snapshot tasks, and a create from a snapshot
    # create from an image: its download (url, token); upload: where the data goes (url is the
    # image's upload URL, disk_format the format to store).
    image: ImageRef | None = None


@dataclass
class VolumeEvent(Message):
    request_id: str
    volume_id: str
    host: str
    event: str
    size_gb: int = 0
    snapshot_id: str = ""
    image_id: str = ""
    action: str = ""  # EVENT_VOLUME_ACTION_FAILED: which VOLUME_ACTION_* failed
    message: str = ""  # why it failed, in words a user can read
    # EVENT_VOLUME_CREATED: how a guest reaches it (see the module's docstring).
    connection: dict[str, Any] = field(default_factory=dict)


@dataclass
class VolumeHostReport(Message):
    """A volume host's heartbeat: who it is, its room, and which volumes it holds."""

    host: str
    backend: str  # "nbd", or "fake" in tests
    total_gb: int
    free_gb: int
    availability_zone: str = "nova"
    # volume id -> size in bytes, for every volume file the host holds.
    volumes: dict[str, int] = field(default_factory=dict)


@dataclass
class VolumeAttachRequest(Message):
    request_id: str
    instance_uuid: str
    device: BlockDevice
    attachment_id: str = ""


_NESTED.update({
    ("VolumeRequest", "image"): ImageRef,
    ("VolumeAttachRequest", "device"): BlockDevice,
})
