"""A volume host's tasks (contract 1.9, compute_agent/messages/volumes.py): one method per task,
each run under its volume's lock and answered with exactly one VolumeEvent.

The back end (compute_agent/volumes) does the storage work and is idempotent itself; this layer
fetches and sends images, turns every failure into EVENT_VOLUME_ACTION_FAILED with a message a
user can read, and sends the host's heartbeat report. Only a report that cannot be published
propagates, so Celery runs the task again (every task is safe to repeat).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from compute_agent import image_transfer, qemu_img
from compute_agent import messages as msg
from compute_agent.drivers.base import DriverError
from compute_agent.host_task import HostTask, declared_task, host_task
from compute_agent.locks import KeyedLocks
from compute_agent.logcontext import request_context
from compute_agent.reporter import ReportError
from compute_agent.volumes.backend import (
    FromImage,
    FromSnapshot,
    FromVolume,
    GiB,
    Source,
    VolumeBackend,
    VolumeBackendError,
    VolumeBusy,
)

LOG = logging.getLogger(__name__)

# Under the volumes directory: images being downloaded into a volume, or a volume being written
# out in another format for an upload. The back end never looks there.
TRANSFER_DIR = "_transfer"


class VolumeReporter(Protocol):
    def volume_event(self, event: msg.VolumeEvent) -> None: ...

    def volume_host_report(self, report: msg.VolumeHostReport) -> None: ...


class VolumeTaskError(Exception):
    """A request this host cannot carry out as asked (a bad source, an unknown format)."""


# What a task may fail with and still be answered with action_failed, its text shown to the user:
# the back end's refusals, an image that could not be fetched or sent, qemu-img's complaints.
_EXPECTED = (VolumeBackendError, VolumeTaskError, DriverError, OSError)


def gib(size_bytes: int) -> int:
    """Bytes as whole GiB, rounded up: a volume is never reported smaller than it is."""
    return -(-size_bytes // GiB)


class VolumeManager:
    def __init__(
        self, host: str, backend: VolumeBackend, reporter: VolumeReporter, *,
        backend_name: str, volumes_dir: Path, availability_zone: str = "nova",
    ) -> None:
        self.host = host
        self.backend = backend
        self.reporter = reporter
        self.backend_name = backend_name
        self.availability_zone = availability_zone
        self.transfer_dir = Path(volumes_dir) / TRANSFER_DIR
        self._locks = KeyedLocks()

    # --- the tasks

    @host_task(msg.TASK_CREATE_VOLUME)
    def create_volume(self, request: msg.VolumeRequest) -> msg.VolumeEvent:
        def create() -> dict[str, Any]:
            with self._source(request) as source:
                size = self.backend.create(request.volume_id, request.size_gb, source)
            return {
                "size_gb": gib(size),
                "connection": dict(self.backend.connection(request.volume_id)),
            }

        return self._act(request, msg.VOLUME_ACTION_CREATE, msg.EVENT_VOLUME_CREATED, create)

    @host_task(msg.TASK_DELETE_VOLUME)
    def delete_volume(self, request: msg.VolumeRequest) -> msg.VolumeEvent:
        def delete() -> dict[str, Any]:
            self.backend.delete(request.volume_id)
            return {}

        return self._act(request, msg.VOLUME_ACTION_DELETE, msg.EVENT_VOLUME_DELETED, delete)

    @host_task(msg.TASK_EXTEND_VOLUME)
    def extend_volume(self, request: msg.VolumeRequest) -> msg.VolumeEvent:
        def extend() -> dict[str, Any]:
            return {"size_gb": gib(self.backend.extend(request.volume_id, request.size_gb))}

        return self._act(request, msg.VOLUME_ACTION_EXTEND, msg.EVENT_VOLUME_EXTENDED, extend)

    @host_task(msg.TASK_CREATE_VOLUME_SNAPSHOT)
    def create_snapshot(self, request: msg.VolumeRequest) -> msg.VolumeEvent:
        def snapshot() -> dict[str, Any]:
            self.backend.snapshot(request.volume_id, request.snapshot_id)
            return {"snapshot_id": request.snapshot_id}

        return self._act(request, msg.VOLUME_ACTION_CREATE_SNAPSHOT,
                         msg.EVENT_VOLUME_SNAPSHOT_CREATED, snapshot,
                         failed={"snapshot_id": request.snapshot_id})

    @host_task(msg.TASK_DELETE_VOLUME_SNAPSHOT)
    def delete_snapshot(self, request: msg.VolumeRequest) -> msg.VolumeEvent:
        def delete() -> dict[str, Any]:
            self.backend.delete_snapshot(request.volume_id, request.snapshot_id)
            return {"snapshot_id": request.snapshot_id}

        return self._act(request, msg.VOLUME_ACTION_DELETE_SNAPSHOT,
                         msg.EVENT_VOLUME_SNAPSHOT_DELETED, delete,
                         failed={"snapshot_id": request.snapshot_id})

    @host_task(msg.TASK_UPLOAD_VOLUME)
    def upload_volume(self, request: msg.VolumeRequest) -> msg.VolumeEvent:
        image = request.image

        def upload() -> dict[str, Any]:
            if image is None or not image.url:
                raise VolumeTaskError("no image to upload the volume to")
            if image.disk_format not in qemu_img.FORMATS:
                raise VolumeTaskError(f"disk format {image.disk_format!r} is not supported "
                                      f"(use one of {sorted(qemu_img.FORMATS)})")
            with self.backend.open_for_upload(request.volume_id) as qcow2:
                if image.disk_format == "qcow2":
                    image_transfer.upload(image.url, image.token, qcow2)
                else:
                    with self._transfer_file(".raw") as raw:
                        qemu_img.convert(qcow2, "qcow2", raw, image.disk_format,
                                         force_share=False)
                        image_transfer.upload(image.url, image.token, raw)
            return {"image_id": image.id}

        return self._act(request, msg.VOLUME_ACTION_UPLOAD, msg.EVENT_VOLUME_UPLOADED, upload,
                         failed={"image_id": image.id if image else ""})

    # --- the heartbeat

    def send_host_report(self) -> None:
        """Tell the conductor this host is alive, its room and the volumes it holds. Never
        raises: a heartbeat that fails is logged, and the next one tries again."""
        try:
            total, free = self.backend.capacity()
            report = msg.VolumeHostReport(
                host=self.host, backend=self.backend_name, total_gb=total, free_gb=free,
                availability_zone=self.availability_zone, volumes=self.backend.volumes(),
            )
            self.reporter.volume_host_report(report)
        except Exception:
            LOG.exception("volume host report of %s failed", self.host)

    # --- helpers

    def _act(
        self, request: msg.VolumeRequest, action: str, success: str,
        operation: Callable[[], dict[str, Any]], *, failed: dict[str, Any] | None = None,
    ) -> msg.VolumeEvent:
        with request_context(request.request_id), self._locks.hold(request.volume_id):
            try:
                event = self._event(request, success, **operation())
            except ReportError:
                raise
            except _EXPECTED as exc:
                LOG.warning("%s of volume %s failed: %s", action, request.volume_id, exc)
                event = self._event(request, msg.EVENT_VOLUME_ACTION_FAILED, action=action,
                                    message=_readable(exc), **(failed or {}))
            except Exception as exc:  # a bug: still answered, or the volume stays in a -ing state
                LOG.exception("%s of volume %s failed", action, request.volume_id)
                event = self._event(request, msg.EVENT_VOLUME_ACTION_FAILED, action=action,
                                    message=f"internal error on volume host {self.host}: "
                                            f"{type(exc).__name__}", **(failed or {}))
            self.reporter.volume_event(event)
            return event

    def _event(self, request: msg.VolumeRequest, event: str, **fields: Any) -> msg.VolumeEvent:
        return msg.VolumeEvent(request_id=request.request_id, volume_id=request.volume_id,
                               host=self.host, event=event, **fields)

    @contextlib.contextmanager
    def _source(self, request: msg.VolumeRequest) -> Iterator[Source]:
        """The new volume's source as the back end takes it; an image is downloaded to a file
        that is removed once the volume is made."""
        if request.source == msg.SOURCE_BLANK:
            yield None
        elif request.source == msg.SOURCE_VOLUME:
            yield FromVolume(_required(request.source_volume_id, "source volume"))
        elif request.source == msg.SOURCE_SNAPSHOT:
            yield FromSnapshot(_required(request.source_volume_id, "source volume"),
                               _required(request.snapshot_id, "snapshot"))
        elif request.source == msg.SOURCE_IMAGE:
            if request.image is None or not request.image.url:
                raise VolumeTaskError("no image to create the volume from")
            image = request.image
            if image.disk_format not in qemu_img.FORMATS:
                raise VolumeTaskError(f"image {image.id} is {image.disk_format!r}: a volume can be "
                                      f"made from {' or '.join(sorted(qemu_img.FORMATS))} only")
            if self.backend.volumes().get(request.volume_id):
                yield None  # made already (a repeated task): no second download
                return
            with self._transfer_file(f".{image.disk_format}") as path:
                with path.open("wb") as target:
                    _, md5 = image_transfer.download(image.url, image.token, target)
                if image.checksum and md5 != image.checksum:
                    raise VolumeTaskError(f"image {image.id} arrived damaged (checksum mismatch)")
                # A qcow2 from outside could name any file of this host as its backing file.
                qemu_img.check_standalone(path, image.disk_format)
                yield FromImage(path, image.disk_format)
        else:
            raise VolumeTaskError(f"unknown volume source {request.source!r}")

    @contextlib.contextmanager
    def _transfer_file(self, suffix: str) -> Iterator[Path]:
        self.transfer_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=suffix, dir=self.transfer_dir)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def clear_transfers(self) -> None:
        """Remove what a killed process left mid-transfer (at start-up, before any task)."""
        for leftover in self.transfer_dir.glob("*") if self.transfer_dir.is_dir() else []:
            with contextlib.suppress(OSError):
                leftover.unlink()


def _required(value: str, what: str) -> str:
    if not value:
        raise VolumeTaskError(f"the request names no {what}")
    return value


def _readable(exc: BaseException) -> str:
    if isinstance(exc, VolumeBusy):
        return f"volume is in use: {exc}" if str(exc).strip() else "volume is in use"
    text = str(exc).strip()
    return text or type(exc).__name__


def volume_tasks(manager_class: type[VolumeManager] = VolumeManager) -> dict[str, HostTask]:
    """Every task a volume host serves, by name, from the methods that declare one."""
    found: dict[str, HostTask] = {}
    for attribute in vars(manager_class).values():
        task = declared_task(attribute)
        if task is not None:
            found[task.name] = task
    return found
