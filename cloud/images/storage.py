"""Image bytes on local disk, one file per image under settings.KUMO_IMAGE_DIR, named by its UUID.

An upload writes to a part file beside the image's file, `.<uuid>.<token>.part`, and renames it
into place only when complete, so a reader never sees half an image. Data staged for Glance's
import (`PUT /v2/images/{id}/stage`) is written the same way and renamed to `<uuid>.staged`; the
import renames that into place as the image's file. The uploading process holds
an exclusive flock(2) on its part file from the moment it creates it until it closes it; the kernel
drops the lock when the process dies, however it dies. So "is anyone still writing this?" has an
exact answer at any moment, from any process on this host: try the lock. That is what tells a live
upload from one abandoned by a killed web process (cloud.images.uploads), whatever the database —
SQLite has no advisory locks, and PostgreSQL's session locks would tie the answer to a database
connection (and break behind a transaction-pooling proxy). Anything that removes these files must
run where they are, so the lock asks nothing more of a deployment than the files already do; it
does need a local filesystem (flock over NFS is not to be trusted).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

PART_SUFFIX = ".part"
STAGED_SUFFIX = ".staged"


class ImageTooLarge(Exception):
    """The upload went past the size cap; nothing was kept."""


def image_dir() -> Path:
    return Path(settings.KUMO_IMAGE_DIR)


def _canonical(image_id: object) -> str:
    try:
        return str(uuid.UUID(str(image_id)))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not an image id: {image_id!r}") from None


def path_for(image_id: object) -> Path:
    """The file of one image. The name is rebuilt from a parsed UUID, so nothing a client sends
    (slashes, "..", odd spellings) can point outside the image directory."""
    return image_dir() / _canonical(image_id)


def staged_path_for(image_id: object) -> Path:
    """Where an image's staged data waits for its import."""
    return image_dir() / f"{_canonical(image_id)}{STAGED_SUFFIX}"


class Part:
    """One upload's part file, created and locked by `open_part`; `close()` releases the lock."""

    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self.file = file
        self.published = False

    def close(self) -> None:
        """Remove the file unless it was published, then let go of it (and of its lock)."""
        if not self.published:
            self.path.unlink(missing_ok=True)
        self.file.close()


def open_part(image_id: object) -> Part:
    """A new part file for an upload of the image, created and exclusively locked.

    A sweep may open a part file in the instant between its creation and our lock, find it
    unlocked, take it for abandoned and unlink it. It unlinks while it holds the lock, so once we
    have the lock the name either still leads to our file or we lost that race and start again."""
    directory = image_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        path = directory / f".{_canonical(image_id)}.{secrets.token_hex(8)}{PART_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        file = os.fdopen(fd, "wb")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            still_ours = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            still_ours = False
        if still_ours:
            return Part(path, file)
        file.close()
    raise OSError(f"could not create a part file for image {image_id}")


def write_part(part: Part, chunks: Iterable[bytes], max_size: int) -> tuple[int, str, str]:
    """Write the chunks to the part file and return (size, md5 hex, sha512 hex); ImageTooLarge as
    soon as they go past `max_size`, which is how a body without a length is capped."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    size = 0
    out = part.file
    for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        if size > max_size:
            raise ImageTooLarge(f"Image exceeds the size limit of {max_size} bytes.")
        md5.update(chunk)
        sha512.update(chunk)
        out.write(chunk)
    out.flush()
    # The database will call the image active once we return: the bytes must be on disk.
    os.fsync(out.fileno())
    return size, md5.hexdigest(), sha512.hexdigest()


def publish(part: Part, image_id: object, *, staged: bool = False) -> None:
    """Rename the complete part file into place as the image's file (or, `staged`, as its staged
    data), durably."""
    final = staged_path_for(image_id) if staged else path_for(image_id)
    os.replace(part.path, final)
    part.published = True
    _sync_directory(final.parent)


def promote_staged(image_id: object) -> None:
    """Rename the image's staged data into place as its file; FileNotFoundError if none."""
    final = path_for(image_id)
    os.replace(staged_path_for(image_id), final)
    _sync_directory(final.parent)


def unpromote(image_id: object) -> None:
    """Undo promote_staged (its commit failed): the file goes back to being staged data."""
    os.replace(path_for(image_id), staged_path_for(image_id))


def _sync_directory(directory: Path) -> None:
    # The rename lives in the directory: without this a power cut could lose it after the commit.
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def store(image_id: object, chunks: Iterable[bytes], max_size: int) -> tuple[int, str, str]:
    """Write the chunks as the image's file and return (size, md5 hex, sha512 hex); on any failure
    nothing is left behind."""
    part = open_part(image_id)
    try:
        digest = write_part(part, chunks, max_size)
        publish(part, image_id)
    finally:
        part.close()
    return digest


def _parts(image_id: object | None) -> list[Path]:
    directory = image_dir()
    if not directory.is_dir():
        return []
    if image_id is None:
        pattern = f".*{PART_SUFFIX}"
    else:
        pattern = f".{_canonical(image_id)}.*{PART_SUFFIX}"
    return sorted(directory.glob(pattern))


def _take_if_abandoned(path: Path) -> bool:
    """Remove the part file if no process holds its lock; whether it did."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its upload is alive
        # Unlinked while locked: see open_part for why the order matters.
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def upload_in_progress(image_id: object) -> bool:
    """Whether a live process is writing a part file of this image right now."""
    for path in _parts(image_id):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the shared lock we may have taken
    return False


def remove_abandoned_parts(image_id: object | None = None) -> int:
    """Remove the part files (of one image, or all) that no live process holds; how many."""
    return sum(_take_if_abandoned(path) for path in _parts(image_id))


def open_image(image_id: object) -> BinaryIO:
    """The image's bytes for reading; FileNotFoundError when there are none."""
    return open(path_for(image_id), "rb")


def exists(image_id: object) -> bool:
    return path_for(image_id).is_file()


def staged_exists(image_id: object) -> bool:
    return staged_path_for(image_id).is_file()


def delete_staged(image_id: object) -> bool:
    """Remove the image's staged data; False when there was none."""
    try:
        staged_path_for(image_id).unlink()
    except FileNotFoundError:
        return False
    return True


def delete(image_id: object) -> bool:
    """Remove the image's file, and any data staged for it; False when it had no file."""
    delete_staged(image_id)
    try:
        path_for(image_id).unlink()
    except FileNotFoundError:
        return False
    return True
