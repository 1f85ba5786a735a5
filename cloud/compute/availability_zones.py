"""Availability zones. (Being implemented: see issue 4.)"""

from __future__ import annotations

from cloud.identity.context import RequestContext


def validate_requested_zone(ctx: RequestContext, zone: str | None) -> str | None:
    """The zone a new server asks for, checked to exist (400 if not); None means any zone."""
    return zone or None
