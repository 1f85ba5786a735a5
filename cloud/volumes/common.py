"""What the block-storage services share: policy checks, lookups that answer Cinder's 404s, the
readers of request values that turn bad input into Cinder's 400s, and list paging.

Cinder's rules kept here: another project's volume is missing (404) to a non-admin, whatever their
role; an admin sees every project's only when asking for all_tenants; sizes are whole GiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from cloud.validation import parse_bool

from .models import Volume, VolumeAttachment, VolumeSnapshot

MAX_INT = 2**31 - 1


def authorize(ctx: RequestContext, action: str) -> None:
    if not policy.allowed(ctx, action):
        raise errors.Forbidden(f"Policy doesn't allow {action} to be performed.")


def allowed(ctx: RequestContext, action: str) -> bool:
    return policy.allowed(ctx, action)


def visible(ctx: RequestContext, queryset: QuerySet) -> QuerySet:
    """Rows of the caller's project; an admin's lookups by id see every project's."""
    return queryset if ctx.is_admin else queryset.filter(project_id=ctx.project_id)


def get_volume(ctx: RequestContext, volume_id: Any, *, for_update: bool = False,
               action: str | None = None) -> Volume:
    """The volume as the caller sees it (404 otherwise), then `action` checked: another
    project's volume is missing whatever the caller's role, as Cinder answers."""
    parsed = parse_uuid(str(volume_id))
    rows = visible(ctx, Volume.objects.all())
    if for_update:
        rows = rows.select_for_update()
    found = rows.filter(pk=parsed).first() if parsed else None
    if found is None:
        raise errors.NotFound(f"Volume {volume_id} could not be found.")
    if action is not None:
        authorize(ctx, action)
    return found


def get_snapshot(ctx: RequestContext, snapshot_id: Any, *,
                 action: str | None = None) -> VolumeSnapshot:
    parsed = parse_uuid(str(snapshot_id))
    found = (visible(ctx, VolumeSnapshot.objects.all()).filter(pk=parsed).first()
             if parsed else None)
    if found is None:
        raise errors.NotFound(f"Snapshot {snapshot_id} could not be found.")
    if action is not None:
        authorize(ctx, action)
    return found


def get_attachment(ctx: RequestContext, attachment_id: Any, *,
                   action: str | None = None) -> VolumeAttachment:
    """An attachment of one of the caller's volumes (404 otherwise), then `action` checked."""
    parsed = parse_uuid(str(attachment_id))
    rows = VolumeAttachment.objects.select_related("volume")
    if not ctx.is_admin:
        rows = rows.filter(volume__project_id=ctx.project_id)
    found = rows.filter(pk=parsed).first() if parsed else None
    if found is None:
        raise errors.NotFound(f"Volume attachment could not be found with filter: "
                              f"attachment_id = {attachment_id}.")
    if action is not None:
        authorize(ctx, action)
    return found


def size_of(value: Any, *, name: str = "size") -> int:
    """A size in GiB: a positive whole number (Cinder accepts "1" as well as 1)."""
    if isinstance(value, bool):
        raise errors.BadRequest(f"Invalid input for field/attribute {name}.")
    try:
        size = int(str(value).strip())
    except (TypeError, ValueError):
        raise errors.BadRequest(
            f"Invalid input for field/attribute {name}. Value: {value}. "
            f"'{value}' is not of type 'integer'") from None
    if size < 1 or size > MAX_INT:
        raise errors.BadRequest(
            f"Invalid input for field/attribute {name}. Value: {value}. "
            f"{value} is less than the minimum of 1")
    return size


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    return parse_bool(str(value), f"Invalid value '{value}' for {name}: not a boolean.")


def text(value: Any, name: str, *, max_length: int = 255) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.BadRequest(f"Invalid input for field/attribute {name}. "
                                f"Value: {value}. It is not a string.")
    if len(value) > max_length:
        raise errors.BadRequest(f"Invalid input for field/attribute {name}. "
                                f"It is longer than {max_length} characters.")
    return value


def metadata_of(value: Any, name: str = "metadata") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise errors.BadRequest(f"Invalid input for field/attribute {name}. "
                                "It must be an object of strings.")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise errors.BadRequest(f"Invalid {name} key {key!r}: 1 to 255 characters.")
        if not isinstance(item, str) or len(item) > 255:
            raise errors.BadRequest(f"Invalid {name} value for {key!r}: "
                                    "a string of at most 255 characters.")
        out[key] = item
    return out


# --- lists


def page(rows: QuerySet, query: Mapping[str, str], *, sortable: tuple[str, ...],
         default_sort: str = "created_at") -> QuerySet:
    """Cinder's paging: sort=key[:dir],… (or sort_key/sort_dir), limit, marker (an id in the
    sorted list; the page starts after it)."""
    keys: list[tuple[str, str]] = []
    if query.get("sort"):
        for part in query["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction or "desc"))
    elif query.get("sort_key"):
        keys.append((query["sort_key"], query.get("sort_dir") or "desc"))
    else:
        keys.append((default_sort, query.get("sort_dir") or "desc"))
    order: list[str] = []
    for key, direction in keys:
        field = "name" if key == "display_name" else key
        if field not in sortable:
            raise errors.BadRequest(f"Invalid sort key: {key}")
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid sort direction: {direction}")
        order.append(("-" if direction == "desc" else "") + field)
    if "id" not in {key for key, _ in keys}:
        order.append("-id" if order[-1].startswith("-") else "id")
    rows = rows.order_by(*order)
    marker = query.get("marker")
    if marker:
        ids = [str(pk) for pk in rows.values_list("pk", flat=True)]
        if marker not in ids:
            raise errors.NotFound(f"Marker {marker} could not be found.")
        rows = rows.filter(pk__in=ids[ids.index(marker) + 1:]).order_by(*order)
    offset = _count(query, "offset")
    limit = _count(query, "limit")
    if offset is not None or limit is not None:
        start = offset or 0
        rows = rows[start:start + limit] if limit is not None else rows[start:]
    return rows


def _count(query: Mapping[str, str], name: str) -> int | None:
    """A paging number: absent, or a whole number from 0 (else Cinder's 400)."""
    text = query.get(name)
    if text in (None, ""):
        return None
    try:
        value = int(str(text))
    except ValueError:
        raise errors.BadRequest(f"Invalid {name}: {text}") from None
    if value < 0:
        raise errors.BadRequest(f"{name} must be >= 0")
    return value
