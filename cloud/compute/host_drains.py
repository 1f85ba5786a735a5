"""Host drains, the records: which guests a drain must move, how far each is, and what an operator
sees of it. The moves themselves are started by the scheduler (cloud/scheduler/drains.py), which
owns the placement they need; this module only reads and writes rows.

A guest's part goes pending → moving → done, or → failed with a message (a guest that cannot move
is skipped, never retried forever: the operator reads why and decides). The drain ends completed
when every guest left, failed when some could not, or cancelled by the operator.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors, events
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid

from . import migration_records, states
from .hosts import compute_service, update_service
from .models import HostDrain, Instance, Migration

PENDING = "pending"
MOVING = "moving"
DONE = "done"
FAILED = "failed"


def start(ctx: RequestContext, host: str, reason: str = "") -> HostDrain:
    """Disable the host and record the drain of every guest on it now (the caller kicks it)."""
    service = compute_service(host)
    if service is None:
        raise errors.NotFound(f"Compute host {host} could not be found.")
    with transaction.atomic():
        if HostDrain.objects.filter(host=host, status=HostDrain.RUNNING).exists():
            raise errors.Conflict(f"Host {host} is already being drained.")
        # Disabled first, in the same transaction: no new guest is placed on a host being emptied.
        update_service(service, status="disabled",
                       disabled_reason=reason or f"drained by {ctx.user_name}")
        guests = [
            new_part(uuid, name) for uuid, name in Instance.objects.filter(
                host=host, deleted=False).order_by("created_at").values_list("uuid", "display_name")
        ]
        drain = HostDrain.objects.create(
            host=host, reason=reason, request_id=ctx.request_id, guests=guests,
            requested_by={"user_id": ctx.user_id, "user_name": ctx.user_name,
                          "project_id": ctx.project_id, "project_name": ctx.project_name})
        events.host_moves_changed(host)
    return drain


def guests_on(host: str) -> list[Instance]:
    """What a drain of `host` would move now, oldest first (the dashboard's confirmation)."""
    return list(Instance.objects.filter(host=host, deleted=False).order_by("created_at"))


def new_part(uuid: object, name: str) -> dict[str, Any]:
    return {"id": str(uuid), "name": name, "state": PENDING, "migration": None, "message": ""}


def context_of(drain: HostDrain) -> RequestContext:
    """The operator who asked, as whom the drain's moves are made."""
    who = drain.requested_by or {}
    return RequestContext(
        user_id=who.get("user_id", ""), user_name=who.get("user_name", ""),
        project_id=who.get("project_id"), project_name=who.get("project_name"),
        roles=("admin",), request_id=drain.request_id or "-")


def get(drain_id: str) -> HostDrain:
    parsed = parse_uuid(drain_id)
    drain = HostDrain.objects.filter(uuid=parsed).first() if parsed else None
    if drain is None:
        raise errors.NotFound(f"Host drain {drain_id} could not be found.")
    return drain


def list_drains(host: str | None = None) -> QuerySet[HostDrain]:
    drains = HostDrain.objects.all()
    return drains.filter(host=host) if host else drains


def running() -> QuerySet[HostDrain]:
    return HostDrain.objects.filter(status=HostDrain.RUNNING)


def locked(drain_uuid: str) -> HostDrain | None:
    """The running drain, locked for one step (call inside a transaction)."""
    return (HostDrain.objects.select_for_update(no_key=True)
            .filter(uuid=drain_uuid, status=HostDrain.RUNNING).first())


def cancel(drain: HostDrain) -> HostDrain:
    """Start no further move; those under way finish on their own. The host stays disabled."""
    with transaction.atomic():
        row = locked(str(drain.uuid))
        if row is None:
            raise errors.Conflict(f"Host drain {drain.uuid} is {drain.status}, not running.")
        for part in row.guests:
            if part["state"] == PENDING:
                part.update(state=FAILED, message="The drain was cancelled.")
        finish(row, HostDrain.CANCELLED)
    return row


def finish(drain: HostDrain, status: str | None = None) -> None:
    """End the drain: completed, or failed if any guest could not move (or as given)."""
    if status is None:
        failed = any(p["state"] == FAILED for p in drain.guests)
        status = HostDrain.FAILED if failed else HostDrain.COMPLETED
    drain.status = status
    drain.finished_at = timezone.now()
    drain.save(update_fields=["status", "finished_at", "guests", "updated_at"])
    events.host_moves_changed(drain.host)


def save_progress(drain: HostDrain) -> None:
    drain.save(update_fields=["guests", "updated_at"])
    events.host_moves_changed(drain.host)


def summary(drain: HostDrain) -> dict[str, int]:
    """How many guests are in each state."""
    counts = dict.fromkeys((PENDING, MOVING, DONE, FAILED), 0)
    for part in drain.guests:
        counts[part["state"]] += 1
    return counts


def guests_shown(drain: HostDrain) -> list[dict[str, Any]]:
    """Each guest's part as shown to the operator, with its live migration's progress."""
    migration_ids = [p["migration"] for p in drain.guests if p.get("migration")]
    migrations = {m.pk: m for m in Migration.objects.filter(pk__in=migration_ids)}
    shown = []
    for part in drain.guests:
        migration = migrations.get(part.get("migration") or 0)
        progress = 100 if part["state"] == DONE else 0
        if migration is not None and part["state"] == MOVING:
            progress = migration_records.percent_done(migration)
        shown.append({
            "server_id": part["id"], "name": part["name"], "state": part["state"],
            "message": part.get("message", ""), "progress": progress,
            "migration_id": migration.pk if migration else None,
            "migration_type": migration.migration_type if migration else None,
            "migration_status": migration.status if migration else None,
            "dest_compute": migration.dest_compute if migration else None,
        })
    return shown


def is_movable_now(instance: Instance) -> bool:
    """No other task runs on the guest (a drain waits for it rather than fail it)."""
    return instance.task_state is None


def migration_settled(migration: Migration) -> bool:
    return migration.status in states.MIGRATION_FINAL
