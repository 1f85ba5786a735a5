"""Query-string parsing shared by the Compute list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cloud.errors import BadRequest

# The database counts rows and offsets in signed 64 bits: a larger limit or offset is not one.
MAX_COUNT = 2**63 - 1


def limit_param(query) -> int | None:
    return count_param(query, "limit")


def count_param(query, name: str) -> int | None:
    """A non-negative integer query parameter (limit, offset), None when absent; given without a
    value it is no integer (400), as Nova answers."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} param must be an integer: {raw!r}") from None
    if value < 0:
        raise BadRequest(f"{name} param must be positive")
    if value > MAX_COUNT:
        raise BadRequest(f"{name} param must be at most {MAX_COUNT}")
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
    if raw is None:
        return None
    try:
        # A well-formed date that cannot exist (30 February, hour 25, a 99-hour offset) raises
        # ValueError; one that leaves the calendar in UTC (9999-12-31 at -10:00) OverflowError.
        value = parse_datetime(raw.replace(" ", "+"))
        if value is not None:
            value = (timezone.make_aware(value, UTC) if timezone.is_naive(value)
                     else value.astimezone(UTC))
    except (ValueError, OverflowError):
        value = None
    if value is None:
        raise BadRequest(f"Invalid {name} value: {raw!r}")
    return value


def next_link(url: str, items: list, limit: int | None, marker_of) -> list[dict] | None:
    if limit is None or limit == 0 or len(items) < limit:
        return None
    return [{"rel": "next", "href": f"{url}?limit={limit}&marker={marker_of(items[-1])}"}]
