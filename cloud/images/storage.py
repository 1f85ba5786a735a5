"""Image bytes on local disk, one file per image under settings.KUMO_IMAGE_DIR, named by its UUID."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings


class ImageTooLarge(Exception):
    """The upload went past the size cap; nothing was kept."""


def image_dir() -> Path:
    return Path(settings.KUMO_IMAGE_DIR)


def path_for(image_id: object) -> Path:
    """The file of one image. The name is rebuilt from a parsed UUID, so nothing a client sends
    (slashes, "..", odd spellings) can point outside the image directory."""
    try:
        canonical = uuid.UUID(str(image_id))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not an image id: {image_id!r}") from None
    return image_dir() / str(canonical)


def store(image_id: object, chunks: Iterable[bytes], max_size: int) -> tuple[int, str, str]:
    """Write the chunks to the image's file and return (size, md5 hex, sha512 hex).

    The data goes to a temporary file in the same directory and is renamed into place only when
    complete, so a reader never sees half an image and a failed upload leaves nothing behind.
    """
    final = path_for(image_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(usedforsecurity=False)
    sha512 = hashlib.sha512()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
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
        os.replace(tmp_name, final)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return size, md5.hexdigest(), sha512.hexdigest()


def open_image(image_id: object) -> BinaryIO:
    """The image's bytes for reading; FileNotFoundError when there are none."""
    return open(path_for(image_id), "rb")


def exists(image_id: object) -> bool:
    return path_for(image_id).is_file()


def delete(image_id: object) -> bool:
    """Remove the image's file; False when there was none."""
    try:
        path_for(image_id).unlink()
    except FileNotFoundError:
        return False
    return True
