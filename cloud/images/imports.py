"""Glance's interoperable image import, and the task records that tell how each import went.

    glance-direct:  queued ──PUT /stage──▶ uploading (staged) ──POST /import──▶ active
    web-download:   queued ──POST /import {uri}──▶ importing ──▶ active

Staging streams the bytes through the same machinery as an upload (cloud.images.uploads: the part
file under flock, the size cap, the format inspector, recovery when its process dies) and keeps
them as the image's staged data. A glance-direct import then renames them into place under the
image's row lock, so it either happens whole or not at all, and nothing is left `importing`. A
web-download fetches the URL (cloud.images.web_download) as an upload of its body: a URL Kumo may
not or cannot reach is refused at once (400, naming it), with the image still queued. Both run in
the request that asks for them, which answers 202 as Glance does once they are done.

Every import leaves an ImageTask (`api_image_import`): `GET /v2/images/{id}/tasks` shows it with
the request id that started it. `POST /v2/tasks` (an admin's `import` task) is a web-download
into a new image.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from cloud.validation import validate

from . import images, storage, uploads, web_download
from .models import ACTIVE, IMPORTING, UPLOADING, Image, ImageTask

log = logging.getLogger(__name__)

GLANCE_DIRECT, WEB_DOWNLOAD = "glance-direct", "web-download"
IMPORT_METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD)
# Kumo has one store, on local disk; the import body may name it.
STORE = "file"
IMAGE_IMPORT = "api_image_import"
PROCESSING, SUCCESS, FAILURE = "processing", "success", "failure"
# How long Glance keeps a finished task.
TASK_TTL = timedelta(hours=48)

IMPORT_SCHEMA: dict = {
    "type": "object",
    "required": ["method"],
    "properties": {
        "method": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "uri": {"type": "string"}},
        },
        "stores": {"type": "array", "items": {"type": "string"}},
        "all_stores": {"type": "boolean"},
        "all_stores_must_succeed": {"type": "boolean"},
    },
}
TASK_SCHEMA: dict = {
    "type": "object",
    "required": ["type", "input"],
    "properties": {
        "type": {"type": "string"},
        "input": {
            "type": "object",
            "required": ["import_from", "image_properties"],
            "properties": {
                "import_from": {"type": "string"},
                "import_from_format": {"type": "string"},
                "image_properties": {"type": "object"},
            },
        },
    },
}


def _authorize(ctx: RequestContext, action: str) -> None:
    if not policy.allowed(ctx, action):
        raise errors.Forbidden(f"Policy doesn't allow {action} to be performed.")


def _owned_image(ctx: RequestContext, image_id: object, action: str) -> Image:
    """The image, seen (404 first) and then owned by the caller (403), as for any change."""
    image = images.get_image(ctx, image_id)
    _authorize(ctx, action)
    if not ctx.is_admin and image.owner_id != ctx.project_id:
        raise errors.Forbidden("You are not permitted to import data to this image.")
    return image


def _check_formats(image: Image) -> None:
    if not image.disk_format or not image.container_format:
        raise errors.BadRequest(
            "Properties disk_format, container_format must be set prior to saving data."
        )


# --- staging


def stage_image(
    ctx: RequestContext, image_id: object, chunks: Iterable[bytes], content_length: int | None
) -> Image:
    """Keep the bytes as the image's staged data (queued → uploading), for a glance-direct
    import. A refused or broken staging leaves the image queued with nothing kept."""
    image = _owned_image(ctx, image_id, "image:upload")
    _check_formats(image)
    try:
        return uploads.receive(image, chunks, content_length, via=UPLOADING, stage=True)
    except errors.NotFound:
        raise errors.NotFound(f"No image found with ID {image_id}") from None


# --- import


def import_image(ctx: RequestContext, image_id: object, body: Mapping[str, Any]) -> ImageTask:
    """Carry out `POST /v2/images/{id}/import`; the task that records it."""
    validate(IMPORT_SCHEMA, dict(body))
    image = _owned_image(ctx, image_id, "image:import")
    method = body["method"]["name"]
    if method not in IMPORT_METHODS:
        raise errors.BadRequest(
            f"Import method {method} is not supported; use one of {', '.join(IMPORT_METHODS)}."
        )
    stores = body.get("stores") or []
    if any(store != STORE for store in stores):
        raise errors.BadRequest(f"Unknown store in {stores}: this cloud has one, {STORE!r}.")
    if method == GLANCE_DIRECT:
        return _glance_direct(ctx, image, body)
    return _web_download(ctx, image, body)


def _new_task(ctx: RequestContext, image: Image, body: Mapping[str, Any]) -> ImageTask:
    return ImageTask.objects.create(
        type=IMAGE_IMPORT,
        status=PROCESSING,
        image=image,
        owner_id=image.owner_id or ctx.project_id,
        user_id=ctx.user_id,
        request_id=ctx.request_id,
        input={"image_id": str(image.pk), "import_req": dict(body), "backend": [STORE]},
    )


def _reason(exc: BaseException) -> str:
    # A task never stays processing: whatever stopped the import is its failure.
    return exc.message if isinstance(exc, errors.KumoError) else "The import failed unexpectedly."


def _end_task(task: ImageTask, status: str, message: str = "") -> ImageTask:
    task.status = status
    task.message = message
    task.result = {"image_id": str(task.image_id)} if status == SUCCESS and task.image_id else None
    task.expires_at = timezone.now() + TASK_TTL
    try:
        task.save(update_fields=["status", "message", "result", "expires_at", "updated_at"])
    except DatabaseError:
        # The import's own outcome stands; only its record is out of date.
        log.exception("image task %s: could not record that it ended %s", task.pk, status)
    return task


def _glance_direct(ctx: RequestContext, image: Image, body: Mapping[str, Any]) -> ImageTask:
    if image.status != UPLOADING:
        raise errors.Conflict("Image needs to be staged before 'glance-direct' method can be used.")
    task = _new_task(ctx, image, body)
    try:
        _promote(image)
    except BaseException as exc:
        _end_task(task, FAILURE, _reason(exc))
        raise
    return _end_task(task, SUCCESS)


def _promote(image: Image) -> None:
    """Staged data becomes the image's data, and the image active: both or neither."""
    promoted = False
    try:
        with transaction.atomic():
            row = Image.objects.select_for_update().filter(pk=image.pk).first()
            if row is None:
                raise errors.NotFound(f"Image {image.pk} was deleted while it was imported.")
            if not uploads.is_staged(row):
                # Still streaming its staging, or what it staged was lost meanwhile.
                raise errors.Conflict(
                    "Image needs to be staged before 'glance-direct' method can be used."
                )
            storage.promote_staged(image.pk)
            promoted = True
            Image.objects.filter(pk=image.pk).update(status=ACTIVE, updated_at=timezone.now())
    except BaseException:
        if promoted and not Image.objects.filter(pk=image.pk, status=ACTIVE).exists():
            storage.unpromote(image.pk)
        raise


def _web_download(ctx: RequestContext, image: Image, body: Mapping[str, Any]) -> ImageTask:
    uri = body["method"].get("uri")
    if not uri:
        raise errors.BadRequest("The web-download import method needs a 'uri'.")
    if image.status != "queued":
        raise errors.Conflict("Image needs to be in queued state to use 'web-download' method.")
    _check_formats(image)
    task = _new_task(ctx, image, body)
    try:
        _download_into(image, uri)
    except BaseException as exc:
        _end_task(task, FAILURE, _reason(exc))
        raise
    return _end_task(task, SUCCESS)


def _download_into(image: Image, uri: str) -> None:
    try:
        chunks, length = web_download.fetch(uri)
    except web_download.DownloadRefused as exc:
        raise errors.BadRequest(str(exc)) from None
    uploads.receive(image, chunks, length, via=IMPORTING)


# --- tasks


def image_tasks(ctx: RequestContext, image_id: object) -> QuerySet[ImageTask]:
    """The import tasks of one image (Glance 2.12's `GET /v2/images/{id}/tasks`)."""
    image = images.get_image(ctx, image_id)
    _authorize(ctx, "image:tasks")
    return ImageTask.objects.filter(image=image)


def list_tasks(ctx: RequestContext, params: Mapping[str, str]) -> QuerySet[ImageTask]:
    _authorize(ctx, "image:tasks:admin")
    tasks = ImageTask.objects.all()
    for key in ("type", "status"):
        if key in params:
            tasks = tasks.filter(**{key: params[key]})
    return tasks


def get_task(ctx: RequestContext, task_id: object) -> ImageTask:
    _authorize(ctx, "image:tasks:admin")
    task = ImageTask.objects.filter(pk=parse_uuid(task_id)).first()
    if task is None:
        raise errors.NotFound(f"Task with the given id {task_id} was not found.")
    return task


def create_task(ctx: RequestContext, body: Mapping[str, Any]) -> ImageTask:
    """An `import` task: a new image with `image_properties`, its data fetched from
    `import_from`. A URL that cannot be fetched is refused (400) before anything is created."""
    _authorize(ctx, "image:tasks:admin")
    validate(TASK_SCHEMA, dict(body))
    if body["type"] != "import":
        raise errors.BadRequest(f"Task type {body['type']} is not supported; use 'import'.")
    uri = body["input"]["import_from"]
    try:
        web_download.check(uri)
    except web_download.DownloadRefused as exc:
        raise errors.BadRequest(str(exc)) from None
    image = images.create_image(ctx, body["input"]["image_properties"])
    task = ImageTask.objects.create(
        type="import", status=PROCESSING, image=image, owner_id=ctx.project_id,
        user_id=ctx.user_id, request_id=ctx.request_id, input=dict(body["input"]),
    )
    try:
        _check_formats(image)
        _download_into(image, uri)
    except errors.KumoError as exc:
        # The image was the task's to make; a task that failed leaves none behind.
        Image.objects.filter(pk=image.pk).delete()
        storage.delete(image.pk)
        return _end_task(task, FAILURE, exc.message)
    return _end_task(task, SUCCESS)
