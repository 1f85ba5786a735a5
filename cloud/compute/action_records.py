"""Instance-action records: the history of what was done to a server, as Nova keeps it.

An action record (InstanceAction, Nova's name, served as os-instance-actions) is opened by the
request that starts something (`record_action`); the steps that follow add events to the latest one
(`record_event`), from whichever process carries them out. `openstack server event list` reads them.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
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
) -> bool:
    """Add a finished event to the latest action; mark the action failed on Error, and finished
    when `finish_action`. False, and nothing recorded, when the instance has no action."""
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    changes: dict[str, object] = {}
    if result == ERROR:
        changes["message"] = ERROR
    if finish_action:
        changes["finish_time"] = now
    if changes and connection.vendor == "postgresql":
        return _record_and_mark(instance_uuid, event, result, host, details, traceback, now,
                                changes)
    # One statement finds the latest action and adds the event to it (every placement records
    # one: the ORM's read-then-insert cost a round trip and most of a millisecond of CPU).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_EVENT} (action_id, event, result, host, details, traceback, "
            "start_time, finish_time) "
            f"SELECT id, %s, %s, %s, %s, %s, %s, %s FROM {_ACTION} WHERE instance_id = %s "
            "ORDER BY start_time DESC, id DESC LIMIT 1",
            [event, result, host, details, traceback, stamp, stamp, _uuid_param(instance_uuid)],
        )
        if cursor.rowcount != 1:
            return False
    if changes:
        latest = InstanceAction.objects.filter(instance_id=instance_uuid).order_by(
            "-start_time", "-id").values("pk")[:1]
        InstanceAction.objects.filter(pk__in=latest).update(updated_at=now, **changes)
    return True


def _record_and_mark(instance_uuid: str, event: str, result: str, host: str | None,
                     details: str | None, traceback: str | None, now: datetime,
                     changes: dict[str, object]) -> bool:
    """record_event's insert and its action's update (finished, failed) in one statement
    (PostgreSQL's data-modifying WITH): a build's spawned event finishes its action, once per boot
    in the conductor."""
    sets = ", ".join(["updated_at = %s", *(f"{column} = %s" for column in changes)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH latest AS (SELECT id FROM {_ACTION} WHERE instance_id = %s "
            "ORDER BY start_time DESC, id DESC LIMIT 1), "
            f"added AS (INSERT INTO {_EVENT} (action_id, event, result, host, details, traceback, "
            "start_time, finish_time) SELECT id, %s, %s, %s, %s, %s, %s, %s FROM latest "
            "RETURNING action_id) "
            f"UPDATE {_ACTION} SET {sets} WHERE id IN (SELECT action_id FROM added) RETURNING id",
            [instance_uuid, event, result, host, details, traceback, now, now, now,
             *changes.values()],
        )
        return cursor.fetchone() is not None


def record_successes(event: str, hosts: dict[str, str]) -> int:
    """`record_event(uuid, event, SUCCESS, host=host)` for each instance uuid → host of `hosts`,
    in one statement (PostgreSQL: DISTINCT ON finds each latest action); how many recorded."""
    if not hosts:
        return 0
    stamp = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_EVENT} (action_id, event, result, host, details, traceback, "
            "start_time, finish_time) "
            "SELECT id, %s, %s, h.host, NULL, NULL, %s, %s FROM ("
            f"SELECT DISTINCT ON (instance_id) id, instance_id FROM {_ACTION} "
            "WHERE instance_id = ANY(%s::uuid[]) ORDER BY instance_id, start_time DESC, id DESC"
            ") a JOIN unnest(%s::uuid[], %s::text[]) AS h(instance, host) ON h.instance = a.instance_id",
            [event, SUCCESS, stamp, stamp, list(hosts), list(hosts), list(hosts.values())],
        )
        return cursor.rowcount


_EVENT = InstanceActionEvent._meta.db_table
_ACTION = InstanceAction._meta.db_table


def _uuid_param(instance_uuid: str) -> object:
    # As the ORM stores a UUID key: native on PostgreSQL, 32 hex digits on SQLite.
    return InstanceAction._meta.get_field("instance").target_field.get_db_prep_value(
        instance_uuid, connection)


def record_action(ctx: RequestContext, instance: Instance, action: str) -> InstanceAction:
    return InstanceAction.objects.create(**_action_fields(ctx, instance, action))


def new_action(ctx: RequestContext, instance: Instance, action: str) -> InstanceAction:
    """record_action's row, not saved yet (a boot writes it with its instance: boot_sql.py)."""
    return InstanceAction(**_action_fields(ctx, instance, action))


def _action_fields(ctx: RequestContext, instance: Instance, action: str) -> dict[str, object]:
    return {"instance": instance, "action": action, "request_id": ctx.request_id,
            "user_id": ctx.user_id, "project_id": ctx.project_id or ""}


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
