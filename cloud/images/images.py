"""Glance v2 subset: image records (create, JSON-patch update, list, deactivate, delete), visibility
and ownership rules, and the entry points for their data: upload_image checks who may and hands the
bytes to cloud.images.uploads (queued → saving → active, and recovery of abandoned uploads);
open_image_data reads them back through cloud.images.storage.

Visibility as seen by a project: public and community images, plus every image it owns; an
admin sees all. An image a project cannot see answers 404 (never 403), so ids of other projects'
private images do not leak. An image it can see but does not own answers 403 to changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.db import transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.ids import parse_uuid
from cloud.validation import parse_bool, validate

from . import storage, uploads
from .models import (
    ACTIVE,
    CONTAINER_FORMATS,
    DEACTIVATED,
    DISK_FORMATS,
    QUEUED,
    VISIBILITIES,
    Image,
)

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
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
# Query parameters with a meaning of their own; any other one filters on an extra property.
_LIST_PARAMS = frozenset(
    [
        "limit",
        "marker",
        "sort_key",
        "sort_dir",
        "sort",
        "name",
        "id",
        "status",
        "visibility",
        "owner",
        "os_hidden",
        "tag",
        "disk_format",
        "container_format",
        "member_status",
    ]
)
_SORT_KEYS = frozenset({"created_at", "updated_at", "name", "id", "status"})

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


@dataclass
class ImagePage:
    images: list[Image]
    limit: int
    next_marker: str | None


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


def visible_images(ctx: RequestContext) -> QuerySet[Image]:
    """Every image the caller's project may see (all of them for an admin)."""
    images = Image.objects.all()
    if ctx.is_admin:
        return images
    return images.filter(Q(visibility__in=["public", "community"]) | Q(owner_id=ctx.project_id))


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


# --- list


def _flag(value: str, name: str) -> bool:
    return parse_bool(value, f"Invalid value {value!r} for {name}: expected true or false.")


def _id_filter(value: str) -> list[uuid.UUID]:
    raw = value[3:].split(",") if value.startswith("in:") else [value]
    # An id that cannot exist matches nothing, as an unknown one would.
    parsed = (parse_uuid(item.strip().strip('"')) for item in raw)
    return [image_id for image_id in parsed if image_id is not None]


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise errors.BadRequest("limit param must be an integer") from None
    # Glance itself answers limit=0 with an empty page; a page of nothing is never what a client
    # meant, so it is refused rather than answered with no "next" to follow.
    if limit < 1:
        raise errors.BadRequest("limit param must be a positive integer")
    return min(limit, MAX_LIMIT)


def _sorting(params: Mapping[str, str]) -> tuple[str, bool]:
    key = params.get("sort_key", "created_at")
    direction = params.get("sort_dir", "desc")
    if key not in _SORT_KEYS:
        raise errors.BadRequest(f"Unsupported sort_key {key!r}; use one of {sorted(_SORT_KEYS)}.")
    if direction not in ("asc", "desc"):
        raise errors.BadRequest("sort_dir must be asc or desc.")
    return key, direction == "desc"


def list_images(
    ctx: RequestContext, params: Mapping[str, str], tags: list[str] | None = None
) -> ImagePage:
    """One page of the images the caller sees, filtered as Glance's list is. `params` holds one
    value per query parameter; `tags` every `tag` value (an image must carry all of them)."""
    _authorize(ctx, "image:get")
    images = visible_images(ctx)
    if "os_hidden" in params:
        images = images.filter(os_hidden=_flag(params["os_hidden"], "os_hidden"))
    else:
        images = images.filter(os_hidden=False)
    for key in ("name", "status", "disk_format", "container_format"):
        if key in params:
            images = images.filter(**{key: params[key]})
    if "owner" in params:
        images = images.filter(owner_id=params["owner"])
    visibility = params.get("visibility")
    if visibility and visibility != "all":
        if visibility not in VISIBILITIES:
            raise errors.BadRequest(f"Invalid visibility value: {visibility}")
        images = images.filter(visibility=visibility)
    if "id" in params:
        images = images.filter(pk__in=_id_filter(params["id"]))
    for n, (key, value) in enumerate(sorted(params.items())):
        if key not in _LIST_PARAMS:
            alias = f"_prop{n}"
            images = images.annotate(**{alias: KeyTransform(key, "properties")}).filter(
                **{alias: value}
            )
    if tags:
        # Tags live in a JSON list, which SQLite cannot search by containment: match in Python.
        wanted = set(tags)
        matching = [pk for pk, have in images.values_list("pk", "tags") if wanted <= set(have)]
        images = images.filter(pk__in=matching)

    sort_key, descending = _sorting(params)
    images = images.annotate(_sort=_sort_expression(sort_key))
    order = ("-_sort", "-id") if descending else ("_sort", "id")
    images = images.order_by(*order)
    if "marker" in params:
        images = _after_marker(ctx, images, params["marker"], sort_key, descending)

    limit = _limit(params.get("limit"))
    page = list(images[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return ImagePage(images=page, limit=limit, next_marker=str(page[-1].id) if more else None)


def _sort_expression(sort_key: str) -> F | Coalesce:
    # Names may be null; a null sorts differently per database, so compare it as "" everywhere
    # (the marker comparison has to agree with the ORDER BY).
    return Coalesce("name", Value("")) if sort_key == "name" else F(sort_key)


def _after_marker(
    ctx: RequestContext, images: QuerySet[Image], marker: str, sort_key: str, descending: bool
) -> QuerySet[Image]:
    marker_id = parse_uuid(marker)
    last = None
    if marker_id is not None:
        last = (
            visible_images(ctx)
            .filter(pk=marker_id)
            .annotate(_sort=_sort_expression(sort_key))
            .first()
        )
    if last is None:
        raise errors.BadRequest(f"Invalid marker. Image {marker} could not be found.")
    if descending:
        after = Q(_sort__lt=last._sort) | Q(_sort=last._sort, id__lt=last.id)
    else:
        after = Q(_sort__gt=last._sort) | Q(_sort=last._sort, id__gt=last.id)
    return images.filter(after)


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
