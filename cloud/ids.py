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


# --- EC2's identifiers
#
# An EC2 id is a prefix and 17 hex digits (`i-0123456789abcdef0`). Kumo's is the resource's own
# uuid cut to those digits: a pure function of the uuid, so the same server has the same EC2 id in
# every call, in the guest's metadata and in every process, and nothing can drift or need
# migrating. 68 bits keep an accidental clash between two uuids of one kind out of reach; the way
# back is a range read of the primary key (`ec2_uuid_range`), which its index answers.
EC2_DIGITS = 17
_HEX = frozenset("0123456789abcdef")


def ec2_id(prefix: str, value: object) -> str:
    """EC2's id of the resource whose uuid is `value`, e.g. ec2_id("i", server.uuid)."""
    return f"{prefix}-{uuid.UUID(str(value)).hex[:EC2_DIGITS]}"


def ec2_uuid_range(prefix: str, value: object) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The lowest and highest uuid whose EC2 id under `prefix` is `value`; None when `value` is
    not such an id (another prefix, a wrong length, not hex): it then names nothing."""
    head, _, digits = str(value).partition("-")
    digits = digits.lower()
    if head != prefix or len(digits) != EC2_DIGITS or not set(digits) <= _HEX:
        return None
    rest = 32 - EC2_DIGITS
    return uuid.UUID(digits + "0" * rest), uuid.UUID(digits + "f" * rest)
