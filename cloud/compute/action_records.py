"""Instance-action records: the history of what was done to a server, as Nova keeps it.

An action record (InstanceAction, Nova's name, served as os-instance-actions) is opened by the
request that starts something (`record_action`); the steps that follow add events to the latest one
(`record_event`), from whichever process carries them out. `openstack server event list` reads them.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid

from .models import MAX_LIST_LIMIT, Instance, InstanceAction, InstanceActionEvent

SUCCESS = "Success"
ERROR = "Error"

EVENT_SCHEDULE = "scheduler_schedule_instance"
EVENT_SPAWN = "compute_build_and_run_instance"
EVENT_TERMINATE = "compute_terminate_instance"
EVENT_BUILD_TIMEOUT = "conductor_build_timeout"
# The reconciler re-drove a task that passed its deadline (cloud/conductor/reconciler.py).
EVENT_REDRIVE = "conductor_redrive"
EVENT_LOCAL_DELETE = "api_local_delete"


def count_events(instance_uuid: str, event: str) -> int:
    """How many `event`s the instance's latest action holds (0 without an action)."""
    action = InstanceAction.objects.filter(instance_id=instance_uuid).order_by(
        "-start_time", "-id").first()
    return 0 if action is None else action.events.filter(event=event).count()


def record_event(
    instance_uuid: str,
    event: str,
    result: str,
    *,
    host: str | None = None,
    details: str | None = None,
    traceback: str | None = None,
    finish_action: bool = False,
) -> InstanceActionEvent | None:
    """Add a finished event to the latest action; mark the action failed on Error, and finished
    when `finish_action`. Nothing happens when the instance has no action."""
    action = InstanceAction.objects.filter(instance_id=instance_uuid).order_by(
        "-start_time", "-id"
    ).first()
    if action is None:
        return None
    now = timezone.now()
    recorded = InstanceActionEvent.objects.create(
        action=action,
        event=event,
        result=result,
        host=host,
        details=details,
        traceback=traceback,
        finish_time=now,
    )
    changes: dict[str, object] = {}
    if result == ERROR:
        changes["message"] = ERROR
    if finish_action:
        changes["finish_time"] = now
    if changes:
        InstanceAction.objects.filter(pk=action.pk).update(updated_at=now, **changes)
    return recorded


def record_action(ctx: RequestContext, instance: Instance, action: str) -> InstanceAction:
    return InstanceAction.objects.create(
        instance=instance,
        action=action,
        request_id=ctx.request_id,
        user_id=ctx.user_id,
        project_id=ctx.project_id or "",
    )


def server_with_history(ctx: RequestContext, server_id: str, *, include_deleted: bool) -> Instance:
    """The server whose actions are asked for; a deleted one only if `include_deleted`."""
    pk = parse_uuid(server_id)
    if pk is None:
        raise errors.NotFound(f"Instance {server_id} could not be found.")
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
    changes_before: datetime | None = None,
) -> list[InstanceAction]:
    """Newest first; `marker` is the request id of the last action of the previous page."""
    rows = InstanceAction.objects.filter(instance=instance).order_by("-start_time", "-id")
    if changes_since is not None:
        rows = rows.filter(updated_at__gte=changes_since)
    if changes_before is not None:
        rows = rows.filter(updated_at__lte=changes_before)
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
