"""Image data coming in: an upload's way from queued through saving to active, the same way for
data staged for Glance's import, and the recovery of uploads whose process died on the way.

    queued ──claim──▶ saving ──finish──▶ active                 PUT /file
    queued ──claim──▶ uploading ──finish──▶ uploading, staged   PUT /stage  (imports.py goes on)
    queued ──claim──▶ importing ──finish──▶ active              web-download
                        │
                        ├─ refused or failed (too large, not the declared format, client gone,
                        │  body stalled) ──▶ queued, nothing kept: the client may simply retry
                        └─ its process died ──▶ queued, nothing kept, by recover_upload()

An upload (`receive`) goes in this order, and the order is what makes recovery exact:

1. `recover_upload` for this image first, so a new upload never answers 409 because an earlier
   one was killed: it takes over at once instead of waiting for a sweep.
2. A part file is created and flock'ed (cloud.images.storage) *before* the claim. From the moment
   the row says saving (uploading, importing), a live upload therefore always holds a locked part
   file, and such an image with none is abandoned — no timeout, no guess: the kernel dropped the
   lock when the process died. (Staged data waiting for its import is the one exception: it holds
   no lock, and is told apart by its size, which only the finish of its staging records.)
3. The claim is a conditional UPDATE queued → saving: of two concurrent uploads only one wins.
4. The bytes stream through the inspector (cloud.images.inspect) and the size cap to the part
   file. A body without a length (chunked) is capped here, while it streams: 413 the moment it
   goes past KUMO_IMAGE_MAX_SIZE, with the part file removed.
5. The finish holds the row lock: the image must still be in the status it was claimed into (not
   deleted, not recovered), then the part file is renamed into place (or to the staged name) and
   the row records it in the same transaction. Recovery takes the same row lock, so it can never
   reset an image that is finishing.

`recover_abandoned_uploads()` is the sweep: beat runs it through the conductor, so an abandoned
image goes back to queued even if nobody ever uploads to it again. It must run on the host that
holds KUMO_IMAGE_DIR (it removes files there and reads their locks), as the web process does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from cloud import errors

from . import storage
from .models import ACTIVE, IMPORTING, QUEUED, SAVING, UPLOADING, Image

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 10 * 1024**3
HASH_ALGO = "sha512"


def max_size() -> int:
    return int(getattr(settings, "KUMO_IMAGE_MAX_SIZE", DEFAULT_MAX_SIZE))


def _read_exactly(chunks: Iterable[bytes], expected: int | None) -> Iterator[bytes]:
    """Pass the chunks through, failing if the body ends before its Content-Length: a client that
    hangs up mid-upload must not leave a truncated image marked active. (A chunked body has no
    length to check: its reader raises instead when the client goes away, see cloud/asgi.py.)"""
    received = 0
    try:
        for chunk in chunks:
            received += len(chunk)
            yield chunk
    except OSError as exc:
        raise errors.BadRequest(f"Error reading the image data: {exc}") from None
    if expected is not None and received != expected:
        raise errors.BadRequest(f"Incomplete upload: received {received} of {expected} bytes.")


# The statuses an upload passes through, each of which recovery may take back to queued.
IN_FLIGHT = (SAVING, UPLOADING, IMPORTING)


def receive(
    image: Image,
    chunks: Iterable[bytes],
    content_length: int | None,
    *,
    via: str = SAVING,
    stage: bool = False,
) -> Image:
    """Store the bytes of a queued image and make it active, passing through status `via`; with
    `stage`, keep them as its staged data instead and leave it `via` (uploading) for its import.
    The caller has checked who may.

    Every refusal leaves the image queued with no file, part file or claim behind."""
    cap = max_size()
    if content_length is not None and content_length > cap:
        raise errors.RequestTooLarge(f"Image exceeds the size limit of {cap} bytes.")
    # Imported on first upload, not with the module: oslo.utils' format inspector pulls in
    # cryptography (its LUKS parser), ~7 MiB in every process that imports images, most of which
    # never receive one (the conductor, the scheduler).
    from .inspect import ImageRejected, StreamInspector

    try:
        inspector = StreamInspector(image.disk_format or "")
    except ImageRejected as exc:
        raise errors.BadRequest(str(exc)) from None
    recover_upload(image.pk)
    part = storage.open_part(image.pk)
    try:
        claimed = Image.objects.filter(pk=image.pk, status=QUEUED).update(
            status=via, updated_at=timezone.now()
        )
        if not claimed:
            image.refresh_from_db(fields=["status"])
            raise errors.Conflict(
                f"Image status transition from {image.status} to {via} is not allowed"
            )
        try:
            # The inspector sees every byte on its way to disk and refuses a hostile image before
            # the file is complete, so nothing (qemu-img above all) ever finds one under an
            # image's name.
            data = inspector.watch(_read_exactly(chunks, content_length))
            size, md5, sha512 = storage.write_part(part, data, cap)
            digest = Digest(size, md5, sha512, inspector.verdict().virtual_size)
            _finish(image, part, digest, via=via, stage=stage)
        except BaseException as exc:
            part.close()
            _back_to_queued(image, via)
            if isinstance(exc, storage.ImageTooLarge):
                raise errors.RequestTooLarge(str(exc)) from None
            if isinstance(exc, ImageRejected):
                raise errors.BadRequest(str(exc)) from None
            raise
    finally:
        part.close()
    image.refresh_from_db()
    return image


@dataclass(frozen=True)
class Digest:
    """What the finish of an upload records about its bytes."""

    size: int
    md5: str
    sha512: str
    virtual_size: int | None

    def columns(self) -> dict[str, object]:
        return {
            "size": self.size,
            "virtual_size": self.virtual_size,
            "checksum": self.md5,
            "os_hash_algo": HASH_ALGO,
            "os_hash_value": self.sha512,
        }


# Cleared whenever an image goes back to queued: a staged image is told by its size.
NO_DATA = dict.fromkeys(("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"))


def _finish(image: Image, part: storage.Part, digest: Digest, *, via: str, stage: bool) -> None:
    target = via if stage else ACTIVE
    try:
        with transaction.atomic():
            row = Image.objects.select_for_update().filter(pk=image.pk).first()
            if row is None:
                raise errors.NotFound(
                    f"Image {image.pk} was deleted while its data was being uploaded."
                )
            if row.status != via:
                # A failed snapshot marks its image killed meanwhile; nothing else may.
                raise errors.Conflict(
                    f"Image status transition from {row.status} to {target} is not allowed"
                )
            storage.publish(part, image.pk, staged=stage)
            Image.objects.filter(pk=image.pk).update(
                status=target, updated_at=timezone.now(), **digest.columns()
            )
    except BaseException:
        # The file went into place but the commit failed. If the commit happened after all (a
        # connection lost while it returned), the file is the image's data and must stay; if we
        # cannot even ask, it stays too and recovery removes it should the row still say so.
        if part.published and not _finished_or_unknown(image, target):
            if stage:
                storage.delete_staged(image.pk)
            else:
                storage.delete(image.pk)
        raise


def _finished_or_unknown(image: Image, status: str) -> bool:
    try:
        return Image.objects.filter(pk=image.pk, status=status, size__isnull=False).exists()
    except DatabaseError:
        return True


def _back_to_queued(image: Image, via: str) -> None:
    try:
        Image.objects.filter(pk=image.pk, status=via).update(
            status=QUEUED, updated_at=timezone.now(), **NO_DATA
        )
    except DatabaseError:
        # The database is out of reach; the image stays saving with no live part file, which is
        # exactly what recover_upload() looks for.
        log.exception("image %s: could not return it to queued after a failed upload", image.pk)


# --- recovery


def is_staged(image: Image) -> bool:
    """Whether the image holds complete staged data, waiting for its import."""
    return image.status == UPLOADING and image.size is not None and storage.staged_exists(image.pk)


def recover_upload(image_id: object) -> bool:
    """Return the image to queued if an upload had claimed it (saving, uploading, importing) and
    no live process is uploading it (its upload's process died): its part file, and any file
    renamed into place by a process that died before its commit, are removed. Staged data that
    is complete waits for its import and is left alone. Whether it did; a no-op for any other
    image."""
    if storage.upload_in_progress(image_id):
        return False
    with transaction.atomic():
        # The row lock waits for an upload that is finishing right now (it holds the lock while
        # it renames and commits), so what we read below is final.
        row = Image.objects.select_for_update().filter(pk=image_id, status__in=IN_FLIGHT).first()
        if row is None or is_staged(row) or storage.upload_in_progress(image_id):
            return False
        removed = storage.remove_abandoned_parts(image_id)
        storage.delete(image_id)
        Image.objects.filter(pk=image_id, status=row.status).update(
            status=QUEUED, updated_at=timezone.now(), **NO_DATA
        )
    log.warning(
        "image %s: its upload was abandoned (its process died); back to queued, %d part file(s) "
        "removed",
        image_id,
        removed,
    )
    return True


def recover_abandoned_uploads() -> int:
    """The sweep: every saving image whose upload died goes back to queued with its files removed,
    and part files that belong to no live upload (their image deleted meanwhile) are removed.
    Idempotent, safe at any time and alongside live uploads; returns how many images it reset.

    It must run on the host whose KUMO_IMAGE_DIR the web process writes to: elsewhere no part file
    could be seen, and every upload would look abandoned. A host without that directory has
    certainly never held an upload, so there it refuses to reset anything."""
    if not storage.image_dir().is_dir():
        log.error(
            "not sweeping abandoned uploads: %s does not exist here, so this is not the host "
            "the web process stores images on",
            storage.image_dir(),
        )
        return 0
    saving = list(Image.objects.filter(status__in=IN_FLIGHT).values_list("pk", flat=True))
    reset = sum(recover_upload(image_id) for image_id in saving)
    orphans = storage.remove_abandoned_parts()
    if orphans:
        log.warning("removed %d part file(s) no live upload holds", orphans)
    return reset
