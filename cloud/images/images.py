"""Glance v2 subset: image records (create, JSON-patch update, tags, list, deactivate, delete),
ownership rules, and the entry points for their data: upload_image checks who may and hands the
bytes to cloud.images.uploads (queued → saving → active, and recovery of abandoned uploads);
open_image_data reads them back through cloud.images.storage.

Which images a project sees is cloud.images.visibility's rule. An image a project cannot see
answers 404 (never 403), so ids of other projects' private images do not leak. An image it can
see but does not own answers 403 to changes.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

from django.db import transaction
from django.utils import timezone

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.ids import parse_uuid
from cloud.validation import validate

from . import listing, storage, uploads
from .models import (
    ACTIVE,
    CONTAINER_FORMATS,
    DEACTIVATED,
    DISK_FORMATS,
    QUEUED,
    VISIBILITIES,
    Image,
)
from .visibility import visible_images

# Glance's two JSON-patch dialects, named by the JSON Schema draft of their media type:
# application/openstack-images-v2.1-json-patch is draft 10 ({"op": "add", "path": "/x"}), the older
# application/openstack-images-v2.0-json-patch draft 4, where the operation is the key
# ({"add": "/x"}) and an add may not overwrite.
PATCH_DRAFTS = (4, 10)
_PATCH_OPS = ("add", "remove", "replace")

# Attributes the server computes. A client that sends one gets 403, as from Glance.
READ_ONLY = frozenset(
    [
        "status",
        "size",
        "virtual_size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "deleted",
        "deleted_at",
        "stores",
    ]
)
# Columns of the Image model a client may set; anything else is an extra property.
CORE = frozenset(
    [
        "name",
        "disk_format",
        "container_format",
        "visibility",
        "min_disk",
        "min_ram",
        "protected",
        "os_hidden",
        "tags",
        "owner",
    ]
)
_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
IMAGE_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-fA-F-]{32,36}$"},
        "name": {"type": ["string", "null"], "maxLength": 255},
        "disk_format": {"enum": [*DISK_FORMATS, None]},
        "container_format": {"enum": [*CONTAINER_FORMATS, None]},
        "visibility": {"enum": VISIBILITIES},
        "min_disk": _INT32,
        "min_ram": _INT32,
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "owner": {"type": ["string", "null"], "maxLength": 64},
        "tags": {
            "type": "array",
            "maxItems": 128,
            "items": {"type": "string", "minLength": 1, "maxLength": 255},
        },
    },
    "propertyNames": {"maxLength": 255},
    # Glance's additional properties are strings; clients send everything else as str().
    "additionalProperties": {"type": "string", "maxLength": 65535},
}


# --- lookups


def _authorize(ctx: RequestContext, action: str) -> None:
    if not policy.allowed(ctx, action):
        raise errors.Forbidden(f"Policy doesn't allow {action} to be performed.")


def _not_found(image_id: object) -> errors.NotFound:
    return errors.NotFound(f"No image found with ID {image_id}")


def _parse_id(image_id: object) -> uuid.UUID:
    parsed = parse_uuid(image_id)
    if parsed is None:
        raise _not_found(image_id)
    return parsed


def get_image(ctx: RequestContext, image_id: object) -> Image:
    _authorize(ctx, "image:get")
    return _visible_or_404(ctx, image_id)


def _visible_or_404(ctx: RequestContext, image_id: object) -> Image:
    image = visible_images(ctx).filter(pk=_parse_id(image_id)).first()
    if image is None:
        raise _not_found(image_id)
    return image


def _owned(ctx: RequestContext, image_id: object, doing: str) -> Image:
    image = _visible_or_404(ctx, image_id)
    if not ctx.is_admin and image.owner_id != ctx.project_id:
        raise errors.Forbidden(f"You are not permitted to {doing} this image.")
    return image


# --- create and update


def _check_writable(key: str, ctx: RequestContext, *, creating: bool) -> None:
    if key == "id" and creating:
        return
    if key in READ_ONLY or key == "id":
        raise errors.Forbidden(f"Attribute '{key}' is read-only.")
    if key.startswith("os_glance"):
        raise errors.Forbidden(f"Attribute '{key}' is reserved.")


def _check_values(ctx: RequestContext, values: Mapping[str, Any]) -> None:
    validate(IMAGE_SCHEMA, dict(values))
    if values.get("visibility") == "public":
        _authorize(ctx, "image:publicize")
    if "owner" in values and values["owner"] != ctx.project_id:
        # Giving an image to another project is an operator's act.
        if not ctx.is_admin:
            raise errors.Forbidden("Attribute 'owner' is read-only.")
        owner = values["owner"]
        if owner is not None and not Project.objects.filter(pk=owner).exists():
            raise errors.BadRequest(f"Owner {owner} is not a project.")


def create_image(ctx: RequestContext, body: Mapping[str, Any]) -> Image:
    """A queued image owned by the caller's project; extra keys become properties."""
    _authorize(ctx, "image:create")
    for key in body:
        _check_writable(key, ctx, creating=True)
    _check_values(ctx, body)
    fields = {key: body[key] for key in CORE if key in body}
    fields.setdefault("owner", ctx.project_id)
    properties = {k: v for k, v in body.items() if k not in CORE and k != "id"}
    image = Image(
        owner_id=fields.pop("owner"),
        tags=_unique(fields.pop("tags", [])),
        properties=properties,
        status=QUEUED,
        **fields,
    )
    if "id" in body:
        image.id = _parse_id_or_400(body["id"])
        if Image.objects.filter(pk=image.id).exists():
            raise errors.Conflict(f"Image with identifier {image.id} already exists!")
    image.save(force_insert=True)
    return image


def create_image_without_data(ctx: RequestContext, body: Mapping[str, Any]) -> Image:
    """An image that is only its properties (Nova's snapshot of a volume-backed server: the
    data is in the volume snapshots its block_device_mapping names), active at once with size
    0 and the digests of no bytes, as Glance shows it after Nova's client uploads zero bytes."""
    image = create_image(ctx, body)
    Image.objects.filter(pk=image.pk).update(
        status=ACTIVE, size=0, checksum=hashlib.md5(b"", usedforsecurity=False).hexdigest(),
        os_hash_algo=uploads.HASH_ALGO, os_hash_value=hashlib.sha512(b"").hexdigest(),
        updated_at=timezone.now())
    image.refresh_from_db()
    return image


def _parse_id_or_400(value: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise errors.BadRequest(f"Invalid image id {value!r}: not a UUID.")
    return parsed


def _unique(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _pointer(path: object) -> str:
    """The attribute a JSON-patch path names. Glance patches one level only."""
    if not isinstance(path, str) or not path.startswith("/") or path.count("/") != 1:
        raise errors.BadRequest(f"Invalid JSON pointer for this resource: {path!r}")
    key = path[1:].replace("~1", "/").replace("~0", "~")
    if not key:
        raise errors.BadRequest(f"Invalid JSON pointer for this resource: {path!r}")
    return key


def _change(op: dict, draft: int) -> tuple[str, str]:
    """The operation and the attribute of one change, in either of Glance's dialects."""
    if draft == 4:
        kinds = [kind for kind in _PATCH_OPS if kind in op]
        if len(kinds) != 1:
            raise errors.BadRequest(
                'Operation objects must contain exactly one member named "add", "remove", '
                'or "replace".'
            )
        kind = kinds[0]
        path = op[kind]
    else:
        named = op.get("op")
        if named not in _PATCH_OPS:
            raise errors.BadRequest(
                f"Invalid operation: `{named}`. It must be one of the following: "
                f"{', '.join(_PATCH_OPS)}."
            )
        kind, path = named, op.get("path")
    key = _pointer(path)
    if kind != "remove" and "value" not in op:
        raise errors.BadRequest(f'Operation "{kind}" requires a member named "value".')
    return kind, key


def update_image(ctx: RequestContext, image_id: object, ops: Any, *, draft: int = 10) -> Image:
    """Apply a Glance JSON patch (add / replace / remove of one attribute each), written in the
    dialect of JSON Schema `draft` (see PATCH_DRAFTS); all of it or, on any refusal, none."""
    _visible_or_404(ctx, image_id)  # as Glance: an image the caller cannot see is 404 first
    _authorize(ctx, "image:modify")
    if draft not in PATCH_DRAFTS:
        raise errors.BadRequest(f"Unrecognized JSON Schema draft version {draft}.")
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise errors.BadRequest("The request body must be a JSON-patch list of operations.")
    with transaction.atomic():
        image = _owned(ctx, image_id, "modify")
        image = Image.objects.select_for_update().get(pk=image.pk)
        core = {key: getattr(image, key) for key in CORE if key != "owner"}
        core["owner"] = image.owner_id
        properties = dict(image.properties)
        changed: set[str] = set()
        for op in ops:
            _apply(ctx, image, op, draft, core, properties, changed)
        _check_values(ctx, {**properties, **{k: v for k, v in core.items() if k in changed}})
        for key in changed & CORE:
            value = core[key]
            if key == "owner":
                image.owner_id = value
            elif key == "tags":
                image.tags = _unique(value)
            else:
                setattr(image, key, value)
        image.properties = properties
        image.save()
    return image


def _apply(
    ctx: RequestContext,
    image: Image,
    op: dict,
    draft: int,
    core: dict[str, Any],
    properties: dict[str, Any],
    changed: set[str],
) -> None:
    kind, key = _change(op, draft)
    _check_writable(key, ctx, creating=False)
    if key in ("disk_format", "container_format") and image.status != QUEUED:
        raise errors.Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    if draft == 4 and kind == "add" and (key in CORE or key in properties):
        raise errors.Conflict(f"Property {key} already present.")
    if key in CORE:
        if kind == "remove":
            raise errors.Forbidden(f"Attribute '{key}' cannot be removed.")
        core[key] = op["value"]
        changed.add(key)
    elif kind == "remove":
        if key not in properties:
            raise errors.Conflict(f"Property {key} does not exist.")
        del properties[key]
    elif kind == "replace" and key not in properties:
        raise errors.Conflict(f"Property {key} does not exist.")
    else:
        properties[key] = op["value"]


# --- tags

MAX_TAGS = 128
MAX_TAG_LENGTH = 255


def add_tag(ctx: RequestContext, image_id: object, tag: str) -> Image:
    """Tag the image; a tag it already carries changes nothing."""
    _visible_or_404(ctx, image_id)
    _authorize(ctx, "image:modify")
    if not tag or len(tag) > MAX_TAG_LENGTH:
        raise errors.BadRequest(f"A tag is 1 to {MAX_TAG_LENGTH} characters long.")
    with transaction.atomic():
        image = _owned(ctx, image_id, "modify")
        image = Image.objects.select_for_update().get(pk=image.pk)
        if tag in image.tags:
            return image
        if len(image.tags) >= MAX_TAGS:
            raise errors.RequestTooLarge(f"Maximum number of tags exceeded: {MAX_TAGS}.")
        image.tags = [*image.tags, tag]
        image.save(update_fields=["tags", "updated_at"])
    return image


def remove_tag(ctx: RequestContext, image_id: object, tag: str) -> Image:
    """Take the tag off the image; 404 when it does not carry it."""
    _visible_or_404(ctx, image_id)
    _authorize(ctx, "image:modify")
    with transaction.atomic():
        image = _owned(ctx, image_id, "modify")
        image = Image.objects.select_for_update().get(pk=image.pk)
        if tag not in image.tags:
            raise errors.NotFound(f"Tag {tag} not found on image {image.pk}.")
        image.tags = [t for t in image.tags if t != tag]
        image.save(update_fields=["tags", "updated_at"])
    return image


# --- list


def list_images(
    ctx: RequestContext, params: Mapping[str, str], tags: list[str] | None = None,
    multi: Mapping[str, list[str]] | None = None,
) -> listing.ImagePage:
    """One page of the caller's image list (cloud.images.listing)."""
    return listing.list_images(ctx, params, tags, multi)


# --- data


def upload_image(
    ctx: RequestContext, image_id: object, chunks: Iterable[bytes], content_length: int | None
) -> Image:
    """Store the image's bytes: queued → saving → active (cloud.images.uploads). A failed upload
    returns the image to queued and keeps no data, so the client may simply try again; so does one
    whose bytes are not the declared disk_format or unsafe for qemu-img (400, see
    cloud.images.inspect), or go past KUMO_IMAGE_MAX_SIZE (413). `content_length` is None for a
    body sent without one (chunked)."""
    _visible_or_404(ctx, image_id)
    _authorize(ctx, "image:upload")
    image = _owned(ctx, image_id, "upload data to")
    if not image.disk_format or not image.container_format:
        raise errors.BadRequest(
            "Properties disk_format, container_format must be set prior to saving data."
        )
    try:
        return uploads.receive(image, chunks, content_length)
    except errors.NotFound:
        raise _not_found(image_id) from None


def open_image_data(ctx: RequestContext, image_id: object) -> tuple[Image, BinaryIO | None]:
    """The image and an open file of its bytes, or None when it has no data yet (Glance: 204)."""
    _authorize(ctx, "image:download")
    image = _visible_or_404(ctx, image_id)
    if image.status == DEACTIVATED and not ctx.is_admin:
        raise errors.Forbidden("The requested image has been deactivated; its data is forbidden.")
    if image.status != ACTIVE and image.status != DEACTIVATED:
        return image, None
    if image.size == 0:
        return image, io.BytesIO(b"")  # a data-less image (create_image_without_data) has no file
    try:
        return image, storage.open_image(image.pk)
    except FileNotFoundError:
        raise errors.NotFound(f"The data of image {image.pk} could not be found.") from None


# --- deactivation


def deactivate_image(ctx: RequestContext, image_id: object) -> Image:
    """Glance's deactivation: the image stays, but only an admin may download its data and no
    server boots from it. Deactivating a deactivated image changes nothing; from any state but
    active it is refused (403, as from Glance)."""
    return _move(ctx, image_id, "deactivate", ACTIVE, DEACTIVATED)


def reactivate_image(ctx: RequestContext, image_id: object) -> Image:
    """Undo deactivate_image; a no-op for an active image, refused (403) from any other state."""
    return _move(ctx, image_id, "reactivate", DEACTIVATED, ACTIVE)


def _move(ctx: RequestContext, image_id: object, verb: str, source: str, target: str) -> Image:
    # Glance's own rule for both is the one for any change of an image: a member of the owner.
    _visible_or_404(ctx, image_id)
    _authorize(ctx, "image:modify")
    image = _owned(ctx, image_id, verb)
    moved = Image.objects.filter(pk=image.pk, status=source).update(
        status=target, updated_at=timezone.now()
    )
    image.refresh_from_db()
    if not moved and image.status != target:
        raise errors.Forbidden(f"Not allowed to {verb} image in status '{image.status}'")
    return image


# --- delete


def delete_image(ctx: RequestContext, image_id: object) -> None:
    _visible_or_404(ctx, image_id)
    _authorize(ctx, "image:delete")
    with transaction.atomic():
        image = _owned(ctx, image_id, "delete")
        if image.protected:
            raise errors.Forbidden(f"Image {image.pk} is protected and cannot be deleted.")
        pk = image.pk
        image.delete()
        transaction.on_commit(lambda: storage.delete(pk))
