"""Query-string parsing shared by the Compute list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cloud.errors import BadRequest


def limit_param(query) -> int | None:
    raw = query.get("limit")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"limit param must be an integer: {raw!r}") from None
    if value < 0:
        raise BadRequest("limit param must be positive")
    return value


def bool_param(query, name: str) -> bool:
    raw = query.get(name)
    if raw is None:
        return False
    if raw == "":
        return True  # ?all_tenants with no value means yes, as Nova reads it
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off", "none"):
        return False
    raise BadRequest(f"Invalid boolean value for {name}: {raw!r}")


def datetime_param(query, name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    value = parse_datetime(raw.replace(" ", "+"))
    if value is None:
        raise BadRequest(f"Invalid {name} value: {raw!r}")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def next_link(url: str, items: list, limit: int | None, marker_of) -> list[dict] | None:
    if limit is None or limit == 0 or len(items) < limit:
        return None
    return [{"rel": "next", "href": f"{url}?limit={limit}&marker={marker_of(items[-1])}"}]
