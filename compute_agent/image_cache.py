"""The per-host image cache: each image downloaded once, verified, and shared by the instances
built on it (each gets its own qcow2 overlay, so the cached file is never written after it lands).

A cache file is named `<image id>-<md5>`: a re-uploaded image under the same id is a new file. A
download goes to a temporary file in the cache directory and is renamed into place only after its
size, MD5 and format checked out, so a reader never sees a partial or unverified image, and a
failed download leaves nothing behind. One lock per cache file makes concurrent spawns of one
image download it once: in-process with a keyed lock, across processes with flock on a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from compute_agent import image_transfer, qemu_img
from compute_agent.drivers.base import DriverError
from compute_agent.instance_files import contained
from compute_agent.locks import KeyedLocks
from compute_agent.messages import ImageRef

LOG = logging.getLogger(__name__)

# Kept this long after its last use by a spawn, even when no instance uses it any more: the next
# boot of the same image is then a cache hit.
DEFAULT_MAX_IDLE = 3600.0

_IMAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_PARTIAL_PREFIX = ".partial-"
_LOCK_PREFIX = ".lock-"


class ImageError(DriverError):
    """The image cannot be fetched or is not what the request says it is."""


@dataclass(frozen=True)
class CachedImage:
    path: Path
    disk_format: str
    virtual_size: int
    downloaded: bool  # False: it was already in the cache


class ImageCache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._locks = KeyedLocks()

    def file_name(self, image: ImageRef) -> str:
        if not _IMAGE_ID.match(image.id or ""):
            raise ImageError(f"image id {image.id[:80]!r} is not usable as a cache name")
        checksum = (image.checksum or "").lower()
        if not _MD5.match(checksum):
            raise ImageError(f"image {image.id} has no MD5 checksum; it cannot be verified")
        return f"{image.id}-{checksum}"

    def path_of(self, name: str) -> Path:
        return contained(self.directory / name, self.directory)

    def fetch(self, image: ImageRef) -> CachedImage:
        """The verified cache file for `image`, downloading it first if it is not there."""
        name = self.file_name(image)
        disk_format = image.disk_format or "qcow2"
        if disk_format not in qemu_img.FORMATS:
            raise ImageError(f"image {image.id}: disk format {disk_format!r} is not supported")
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        path = self.path_of(name)
        with self._locked(name):
            downloaded = False
            if not path.is_file():
                started = time.monotonic()
                self._download(image, path, disk_format)
                downloaded = True
                LOG.info(
                    "image %s cached as %s in %.2f s", image.id, name, time.monotonic() - started
                )
            os.utime(path)  # the "last used" time the sweep goes by
            virtual_size = qemu_img.check_standalone(path, disk_format)
        return CachedImage(path, disk_format, virtual_size, downloaded)

    def _download(self, image: ImageRef, path: Path, disk_format: str) -> None:
        if not image.url:
            raise ImageError(f"image {image.id} is not cached here and the request has no URL")
        fd, partial_name = tempfile.mkstemp(prefix=_PARTIAL_PREFIX, dir=self.directory)
        partial = Path(partial_name)
        try:
            with os.fdopen(fd, "wb") as target:
                size, md5 = image_transfer.download(image.url, image.token, target)
                target.flush()
                os.fsync(target.fileno())
            if image.size and size != image.size:
                raise ImageError(
                    f"image {image.id}: downloaded {size} bytes, the image API said {image.size}"
                )
            if md5 != image.checksum.lower():
                raise ImageError(
                    f"image {image.id}: checksum mismatch (got {md5}, expected {image.checksum})"
                )
            try:
                qemu_img.check_standalone(partial, disk_format)
            except qemu_img.QemuImgError as exc:
                raise ImageError(f"image {image.id} is not a usable {disk_format} image: {exc}") from None
            partial.chmod(0o644)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        with self._locks.hold(name):
            lock_path = self.path_of(_LOCK_PREFIX + name)
            with open(lock_path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def sweep(self, in_use: set[str], *, max_idle: float = DEFAULT_MAX_IDLE) -> list[str]:
        """Remove cache files no instance here uses and no spawn used for `max_idle` seconds,
        and partial downloads as old as that (a crashed agent's leftovers). Return their names."""
        if not self.directory.is_dir():
            return []
        removed = []
        cutoff = time.time() - max_idle
        for entry in sorted(self.directory.iterdir()):
            name = entry.name
            if name.startswith(_LOCK_PREFIX) or name in in_use or entry.is_symlink():
                continue
            if name.startswith(_PARTIAL_PREFIX):
                if _mtime(entry) < cutoff:
                    entry.unlink(missing_ok=True)
                    removed.append(name)
                continue
            with self._locked(name):
                # Re-read under the lock: a spawn may have just used it.
                if entry.is_file() and _mtime(entry) < cutoff:
                    entry.unlink()
                    self.path_of(_LOCK_PREFIX + name).unlink(missing_ok=True)
                    removed.append(name)
        if removed:
            LOG.info("image cache sweep removed %s", ", ".join(removed))
        return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
