"""The history of what was done to a server (os-instance-actions): actions newest first, with events."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q

from cloud import errors
from cloud.identity.context import RequestContext

from .models import Instance, InstanceAction
from .services import MAX_LIST_LIMIT


def server_with_history(ctx: RequestContext, server_id: str, *, include_deleted: bool) -> Instance:
    """The server whose actions are asked for; a deleted one only if `include_deleted`."""
    try:
        pk = uuid.UUID(str(server_id))
    except ValueError:
        raise errors.NotFound(f"Instance {server_id} could not be found.") from None
    rows = Instance.objects.all() if include_deleted else Instance.objects.filter(deleted=False)
    if not ctx.is_admin:
        rows = rows.filter(project_id=ctx.project_id)
    instance = rows.filter(pk=pk).first()
    if instance is None:
        raise errors.NotFound(f"Instance {server_id} could not be found.")
    return instance


def list_actions(
    instance: Instance,
    *,
    limit: int | None = None,
    marker: str | None = None,
    changes_since: datetime | None = None,
) -> list[InstanceAction]:
    """Newest first; `marker` is the request id of the last action of the previous page."""
    rows = InstanceAction.objects.filter(instance=instance).order_by("-start_time", "-id")
    if changes_since is not None:
        rows = rows.filter(updated_at__gte=changes_since)
    if marker:
        last = rows.filter(request_id=marker).first()
        if last is None:
            raise errors.BadRequest(f"Marker {marker} could not be found.")
        rows = rows.filter(
            Q(start_time__lt=last.start_time) | Q(start_time=last.start_time, id__lt=last.id)
        )
    limit = MAX_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)
    return list(rows[:limit])


def get_action(instance: Instance, request_id: str) -> InstanceAction:
    """The action a request made on the server, with its events loaded (404 if there is none)."""
    action = (
        InstanceAction.objects.filter(instance=instance, request_id=request_id)
        .prefetch_related("events")
        .order_by("-start_time", "-id")
        .first()
    )
    if action is None:
        raise errors.NotFound(f"Action {request_id} could not be found.")
    return action
