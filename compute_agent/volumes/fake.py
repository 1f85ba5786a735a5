"""An in-memory volume back end, for tests of the code above it and the failures it must survive.

It keeps the contract of VolumeBackend (the same suite runs against it and the NBD back end), holds
each volume's contents as a few written blocks (write() and read() stand in for a guest), and
fails on demand: fail("create") makes the next create raise, before it changes anything.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compute_agent import qemu_img
from compute_agent.volumes.backend import (
    Connection,
    FromImage,
    FromSnapshot,
    FromVolume,
    GiB,
    Source,
    VolumeBackend,
    VolumeBackendError,
    VolumeBusy,
    VolumeNotFound,
    check_id,
    size_bytes,
)


@dataclass
class FakeVolume:
    size: int
    blocks: dict[int, int] = field(default_factory=dict)  # offset → the byte written there
    snapshots: dict[str, dict[int, int]] = field(default_factory=dict)
    snapshot_sizes: dict[str, int] = field(default_factory=dict)
    connected: int = 0  # clients attached (connect()/disconnect())


class FakeVolumes(VolumeBackend):
    def __init__(self, *, total_gb: int = 1000, export_host: str = "192.0.2.10",
                 port: int = 10809, image_size: int = GiB) -> None:
        self.total_gb = total_gb
        self.export_host = export_host
        self.port = port
        self.image_size = image_size  # the virtual size every image source is taken to have
        self.running = False
        self.calls: list[str] = []
        self._volumes: dict[str, FakeVolume] = {}
        self._failures: dict[str, list[Exception]] = {}
        self._lock = threading.RLock()

    # --- test controls --------------------------------------------------------------------------

    def fail(self, method: str, error: Exception | None = None, *, times: int = 1) -> None:
        """Make the next `times` calls of `method` raise `error` (a VolumeBackendError naming
        the method, by default) without doing anything."""
        if not hasattr(VolumeBackend, method):
            raise ValueError(f"{method} is not a VolumeBackend method")
        default = VolumeBackendError(f"injected failure of {method}")
        self._failures.setdefault(method, []).extend([error or default] * times)

    def write(self, volume_id: str, offset: int, value: int) -> None:
        """What a guest writing `value` at `offset` would leave."""
        with self._lock:
            self._get(volume_id).blocks[offset] = value

    def read(self, volume_id: str, offset: int) -> int:
        with self._lock:
            return self._get(volume_id).blocks.get(offset, 0)

    def connect(self, volume_id: str) -> None:
        """A client (an attached guest) holds the export from now on."""
        with self._lock:
            self._get(volume_id).connected += 1

    def disconnect(self, volume_id: str) -> None:
        with self._lock:
            volume = self._get(volume_id)
            volume.connected = max(0, volume.connected - 1)

    # --- the contract ---------------------------------------------------------------------------

    def start(self) -> None:
        self._enter("start", running=False)
        self.running = True

    def stop(self) -> None:
        self._enter("stop", running=False)
        self.running = False

    def create(self, volume_id: str, size_gb: int, source: Source = None) -> int:
        self._enter("create")
        check_id(volume_id)
        wanted = size_bytes(size_gb)
        with self._lock:
            existing = self._volumes.get(volume_id)
            if existing is not None:
                if existing.size < wanted:
                    raise VolumeBackendError(
                        f"volume {volume_id} already exists with {existing.size} bytes, "
                        "less than asked")
                return existing.size
            blocks, source_size = self._contents_of(source)
            size = max(wanted, source_size)
            used = sum(volume.size for volume in self._volumes.values())
            if used + size > self.total_gb * GiB:
                raise VolumeBackendError("not enough space on the volume host")
            self._volumes[volume_id] = FakeVolume(size=size, blocks=blocks)
            return size

    def _contents_of(self, source: Source) -> tuple[dict[int, int], int]:
        if source is None:
            return {}, 0
        if isinstance(source, FromImage):
            if not source.path.exists():
                raise VolumeBackendError(f"image file {source.path} does not exist")
            return {}, self.image_size
        volume = self._get(source.volume_id)
        if isinstance(source, FromSnapshot):
            if source.snapshot_id not in volume.snapshots:
                raise VolumeNotFound(f"volume {source.volume_id} has no snapshot "
                                     f"{source.snapshot_id}")
            snap = source.snapshot_id
            return dict(volume.snapshots[snap]), volume.snapshot_sizes[snap]
        assert isinstance(source, FromVolume)
        return dict(volume.blocks), volume.size

    def delete(self, volume_id: str) -> None:
        self._enter("delete")
        with self._lock:
            volume = self._volumes.get(check_id(volume_id))
            if volume is None:
                return
            if volume.connected:
                raise VolumeBusy(f"volume {volume_id} is connected to a client (attached); "
                                 "detach it first")
            del self._volumes[volume_id]

    def extend(self, volume_id: str, new_size_gb: int) -> int:
        self._enter("extend")
        new_size = size_bytes(new_size_gb)
        with self._lock:
            volume = self._get(volume_id)
            if new_size < volume.size:
                raise VolumeBackendError(f"volume {volume_id} has {volume.size} bytes; "
                                         "volumes only grow")
            if new_size > volume.size and volume.connected:
                raise VolumeBusy(f"volume {volume_id} is connected to a client (attached); "
                                 "detach it first")
            volume.size = new_size
            return new_size

    def snapshot(self, volume_id: str, snapshot_id: str) -> None:
        self._enter("snapshot")
        check_id(snapshot_id, "snapshot id")
        with self._lock:
            volume = self._get(volume_id)
            if snapshot_id not in volume.snapshots:
                volume.snapshots[snapshot_id] = dict(volume.blocks)
                volume.snapshot_sizes[snapshot_id] = volume.size

    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        self._enter("delete_snapshot")
        with self._lock:
            volume = self._volumes.get(check_id(volume_id))
            if volume is not None:
                volume.snapshots.pop(snapshot_id, None)
                volume.snapshot_sizes.pop(snapshot_id, None)

    def snapshots(self, volume_id: str) -> list[str]:
        self._enter("snapshots")
        with self._lock:
            return list(self._get(volume_id).snapshots)

    def connection(self, volume_id: str) -> Connection:
        self._enter("connection", running=False)
        with self._lock:
            self._get(volume_id)
        return {"driver_volume_type": "nbd", "host": self.export_host, "port": self.port,
                "export": volume_id}

    def capacity(self) -> tuple[int, int]:
        self._enter("capacity", running=False)
        with self._lock:
            used = sum(volume.size for volume in self._volumes.values())
        return self.total_gb, max(0, self.total_gb * GiB - used) // GiB

    def volumes(self) -> dict[str, int]:
        self._enter("volumes", running=False)
        with self._lock:
            return {volume_id: volume.size for volume_id, volume in self._volumes.items()}

    @contextlib.contextmanager
    def open_for_upload(self, volume_id: str) -> Iterator[Path]:
        """A real, blank qcow2 file of the volume's size (the fake keeps its contents only in
        memory): what an image upload reads and inspects is a valid image."""
        self._enter("open_for_upload")
        with self._lock:
            size = self._get(volume_id).size
        with tempfile.TemporaryDirectory(prefix="kumo-fake-upload-") as directory:
            path = Path(directory) / f"{volume_id}.qcow2"
            try:
                qemu_img.create(path, "qcow2", size)
            except qemu_img.QemuImgError as exc:
                raise VolumeBackendError(str(exc)) from exc
            yield path

    # --- helpers --------------------------------------------------------------------------------

    def _enter(self, method: str, *, running: bool = True) -> None:
        """Record the call; raise an injected failure, or refuse while not started (as the NBD
        back end does when its daemon is down)."""
        self.calls.append(method)
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)
        if running and not self.running:
            raise VolumeBackendError("the volume service is not running")

    def _get(self, volume_id: str) -> FakeVolume:
        volume = self._volumes.get(check_id(volume_id))
        if volume is None:
            raise VolumeNotFound(f"volume {volume_id} does not exist on this host")
        return volume
