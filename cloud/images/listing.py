"""Glance's image list: which images (cloud.images.visibility), its filters, sorting and pages.

Filters: the core attributes by exact value (`name`, `status`, `disk_format`, `size`, …),
`id` (one id or `in:a,b`), `tag` (every one given), `size_min`/`size_max`, `os_hidden` (hidden
images are left out unless asked for), `visibility` and `member_status`; any other parameter
filters on an extra property. Sorting: `sort=key[:dir],…` or the older `sort_key`/`sort_dir`
(each may repeat); pages follow a `marker`, the last id of the previous page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from cloud.validation import parse_bool

from .models import Image
from .visibility import listed_images, visible_images

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
# Core attributes a list filters on by exact value.
_EXACT = ("name", "status", "disk_format", "container_format", "checksum", "os_hash_value")
_INTEGERS = ("size", "virtual_size", "min_disk", "min_ram")
# Query parameters with a meaning of their own; any other one filters on an extra property.
_LIST_PARAMS = frozenset(
    [
        *_EXACT,
        *_INTEGERS,
        "limit",
        "marker",
        "sort_key",
        "sort_dir",
        "sort",
        "id",
        "visibility",
        "owner",
        "os_hidden",
        "protected",
        "tag",
        "member_status",
        "size_min",
        "size_max",
    ]
)
_SORT_KEYS = frozenset(
    {"created_at", "updated_at", "name", "id", "status", "size", "virtual_size", "min_disk",
     "min_ram", "disk_format", "container_format", "visibility", "owner"}
)
# Sort keys that may be null, and what a null sorts as (the same on every database).
_NULL_AS = {"name": Value(""), "size": Value(-1), "virtual_size": Value(-1),
            "disk_format": Value(""), "container_format": Value(""), "owner": Value("")}


@dataclass
class ImagePage:
    images: list[Image]
    limit: int
    next_marker: str | None


def _flag(value: str, name: str) -> bool:
    return parse_bool(value, f"Invalid value {value!r} for {name}: expected true or false.")


def _integer(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"Invalid value {value!r} for {name}: expected an integer.") from None


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


def _sort_key(key: str) -> str:
    if key not in _SORT_KEYS:
        raise errors.BadRequest(f"Unsupported sort_key {key!r}; use one of {sorted(_SORT_KEYS)}.")
    return key


def _direction(direction: str) -> bool:
    """Whether `direction` is descending."""
    if direction not in ("asc", "desc"):
        raise errors.BadRequest("sort_dir must be asc or desc.")
    return direction == "desc"


def _sorting(params: Mapping[str, str], multi: Mapping[str, list[str]]) -> list[tuple[str, bool]]:
    """[(key, descending)…] from `sort=k1:dir,k2` or the repeated `sort_key`/`sort_dir` pairs."""
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise errors.BadRequest("The 'sort' parameter cannot be combined with sort_key or "
                                    "sort_dir.")
        order = []
        for item in params["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            order.append((_sort_key(key), _direction(direction or "desc")))
        return order
    keys = multi.get("sort_key") or ["created_at"]
    directions = multi.get("sort_dir") or ["desc"]
    if len(directions) not in (1, len(keys)):
        raise errors.BadRequest("Give one sort_dir, or one for each sort_key.")
    if len(directions) == 1:
        directions = directions * len(keys)
    return [(_sort_key(k), _direction(d)) for k, d in zip(keys, directions, strict=True)]


def _expression(key: str) -> F | Coalesce:
    # A null sorts differently per database; compare it as a fixed value everywhere (the marker
    # comparison has to agree with the ORDER BY).
    if key == "owner":
        return Coalesce("owner_id", _NULL_AS[key])
    return Coalesce(key, _NULL_AS[key]) if key in _NULL_AS else F(key)


def list_images(
    ctx: RequestContext,
    params: Mapping[str, str],
    tags: list[str] | None = None,
    multi: Mapping[str, list[str]] | None = None,
) -> ImagePage:
    """One page of the images the caller lists, filtered as Glance's list is. `params` holds one
    value per query parameter; `tags` every `tag` value (an image must carry all of them);
    `multi` every value of the parameters that may repeat (sort_key, sort_dir)."""
    if not policy.allowed(ctx, "image:get"):
        raise errors.Forbidden("Policy doesn't allow image:get to be performed.")
    images = listed_images(ctx, params.get("visibility"), params.get("member_status"))
    images = _filtered(images, params, tags or [])
    order = _sorting(params, multi or {})
    images = images.annotate(**{f"_s{n}": _expression(key) for n, (key, _) in enumerate(order)})
    order_by = [f"-_s{n}" if desc else f"_s{n}" for n, (_, desc) in enumerate(order)]
    # The id breaks ties, in the direction of the first key, so pages never overlap.
    images = images.order_by(*order_by, "-id" if order[0][1] else "id")
    if "marker" in params:
        images = _after_marker(ctx, images, params["marker"], order)

    limit = _limit(params.get("limit"))
    page = list(images[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return ImagePage(images=page, limit=limit, next_marker=str(page[-1].id) if more else None)


def _filtered(images: QuerySet[Image], params: Mapping[str, str], tags: list[str]) -> QuerySet:
    if "os_hidden" in params:
        images = images.filter(os_hidden=_flag(params["os_hidden"], "os_hidden"))
    else:
        images = images.filter(os_hidden=False)
    if "protected" in params:
        images = images.filter(protected=_flag(params["protected"], "protected"))
    for key in _EXACT:
        if key in params:
            images = images.filter(**{key: params[key]})
    for key in _INTEGERS:
        if key in params:
            images = images.filter(**{key: _integer(params[key], key)})
    if "size_min" in params:
        images = images.filter(size__gte=_integer(params["size_min"], "size_min"))
    if "size_max" in params:
        images = images.filter(size__lte=_integer(params["size_max"], "size_max"))
    if "owner" in params:
        images = images.filter(owner_id=params["owner"])
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
    return images


def _after_marker(
    ctx: RequestContext, images: QuerySet[Image], marker: str, order: list[tuple[str, bool]]
) -> QuerySet[Image]:
    marker_id = parse_uuid(marker)
    last = None
    if marker_id is not None:
        last = (
            visible_images(ctx)
            .filter(pk=marker_id)
            .annotate(**{f"_s{n}": _expression(key) for n, (key, _) in enumerate(order)})
            .first()
        )
    if last is None:
        raise errors.BadRequest(f"Invalid marker. Image {marker} could not be found.")
    # Rows after the marker in the list's order: equal on the first i keys and beyond it on the
    # next one, for some i; equal on every key and beyond it on the id, lastly.
    columns = [(f"_s{n}", desc, getattr(last, f"_s{n}")) for n, (_, desc) in enumerate(order)]
    columns.append(("id", order[0][1], last.id))
    after = Q(pk__in=[])
    equal = Q()
    for name, desc, value in columns:
        after |= equal & Q(**{f"{name}__{'lt' if desc else 'gt'}": value})
        equal &= Q(**{name: value})
    return images.filter(after)
