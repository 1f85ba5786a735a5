"""Server groups. (Being implemented: see issue 4.)"""

from __future__ import annotations

from cloud.identity.context import RequestContext

from .models import Instance, ServerGroup


def group_from_hints(ctx: RequestContext, hints: dict) -> ServerGroup | None:
    return None


def add_member(group: ServerGroup, instance: Instance) -> None:
    return None
