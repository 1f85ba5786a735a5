"""The interface every volume back end implements, and the errors it raises.

A volume host keeps its volumes behind one VolumeBackend: the agent calls it for the volume
requests it receives and never touches a volume's files itself. A back end speaks volume and
snapshot ids (the control plane's uuids), sizes in GiB on the way in and bytes on the way out, and
hands out connection info that a compute host's hypervisor uses to attach the volume over the
network.

    VolumeBackendError          anything refused or failed; str(error) is readable on its own
     ├── VolumeNotFound         no such volume (or no such snapshot of it)
     └── VolumeBusy             a client is connected (the volume is attached somewhere)

Every method may be called from several worker threads at once; a back end serialises what it
must per volume. Every mutating method is idempotent: asking for what already holds is success.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

GiB = 1024**3

# Ids become file names, QMP arguments and NBD export names: nothing that could climb out of the
# volumes directory or need quoting anywhere.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class VolumeBackendError(Exception):
    """The back end refused or failed an operation."""


class VolumeNotFound(VolumeBackendError):
    """The volume, or the snapshot named, does not exist on this host."""


class VolumeBusy(VolumeBackendError):
    """The volume is connected to a client (attached to a guest), so this must wait."""


@dataclass(frozen=True)
class FromImage:
    """A downloaded image file (the agent's image cache) copied into the new volume."""

    path: Path
    disk_format: str


@dataclass(frozen=True)
class FromSnapshot:
    volume_id: str
    snapshot_id: str


@dataclass(frozen=True)
class FromVolume:
    volume_id: str


Source = FromImage | FromSnapshot | FromVolume | None


def parse_source(value: Sequence[str] | None) -> Source:
    """A source given as a plain tuple, as messages carry it: None, ("image", path, format),
    ("snapshot", volume_id, snapshot_id) or ("volume", volume_id)."""
    if value is None:
        return None
    kind, *rest = value
    if kind == "image" and len(rest) == 2:
        return FromImage(Path(rest[0]), rest[1])
    if kind == "snapshot" and len(rest) == 2:
        return FromSnapshot(rest[0], rest[1])
    if kind == "volume" and len(rest) == 1:
        return FromVolume(rest[0])
    raise VolumeBackendError(f"unknown volume source {tuple(value)!r}")


class Connection(TypedDict):
    """What a hypervisor needs to attach the volume (Cinder's connection_info "data", with its
    driver_volume_type beside it)."""

    driver_volume_type: str
    host: str
    port: int
    export: str


def check_id(value: str, what: str = "volume id") -> str:
    if not _ID.fullmatch(value):
        raise VolumeBackendError(f"{what} {value!r} is not valid")
    return value


def size_bytes(size_gb: int) -> int:
    if size_gb < 1:
        raise VolumeBackendError(f"a volume must be at least 1 GiB, not {size_gb}")
    return size_gb * GiB


class VolumeBackend(abc.ABC):
    @abc.abstractmethod
    def start(self) -> None:
        """Bring up the serving side (idempotent) and serve every volume the host holds. Left
        overs of work cut short by a crash (partial copies, temporary snapshots) are removed."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving: connected clients lose the volumes until start()."""

    @abc.abstractmethod
    def create(self, volume_id: str, size_gb: int, source: Source = None) -> int:
        """Make the volume, blank or a full copy of `source`, and serve it; return its size in
        bytes: the larger of size_gb and the source's size. A volume that already exists with
        that size is success; a partial one left by a crash is never seen (copies are made
        aside and renamed)."""

    @abc.abstractmethod
    def delete(self, volume_id: str) -> None:
        """Stop serving the volume and remove it with its snapshots; a missing one is success.
        VolumeBusy while a client is connected."""

    @abc.abstractmethod
    def extend(self, volume_id: str, new_size_gb: int) -> int:
        """Grow the volume; return its size in bytes. Shrinking is refused; VolumeBusy while a
        client is connected (a guest would not see the new size)."""

    @abc.abstractmethod
    def snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """Record the volume's current contents as `snapshot_id`, also while a guest writes to
        it (crash-consistent: what the guest had flushed, as after a power cut)."""

    @abc.abstractmethod
    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """Forget a snapshot; a missing one (or volume) is success."""

    @abc.abstractmethod
    def snapshots(self, volume_id: str) -> list[str]:
        """The ids of the volume's snapshots."""

    @abc.abstractmethod
    def connection(self, volume_id: str) -> Connection:
        """Where a hypervisor finds the volume."""

    @abc.abstractmethod
    def capacity(self) -> tuple[int, int]:
        """(total, free) GiB of the storage the volumes live on, for the host report."""

    @abc.abstractmethod
    def volumes(self) -> dict[str, int]:
        """Every volume this host holds: id → size in bytes."""

    @abc.abstractmethod
    def open_for_upload(self, volume_id: str) -> AbstractContextManager[Path]:
        """A standalone qcow2 file with a consistent copy of the volume's current contents, to
        upload as an image; it is removed when the context ends. The volume may stay attached."""
