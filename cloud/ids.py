"""Reading the ids clients send: every API and service parses them here, one way.

A value that is not a UUID names nothing: lookups treat it as "not found", never as an error of
their own, so a malformed id answers exactly like a missing one.
"""

from __future__ import annotations

import uuid


def parse_uuid(value: object) -> uuid.UUID | None:
    """The UUID `value` spells (in any spelling uuid.UUID accepts), or None."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def canonical_uuid(value: object) -> str | None:
    """`value` as a canonical lower-case UUID string, or None when it is not a UUID."""
    parsed = parse_uuid(value)
    return None if parsed is None else str(parsed)


def ref_id(ref: object) -> str:
    """The id at the end of a reference: clients send an id or a bookmark link ending in one."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]
