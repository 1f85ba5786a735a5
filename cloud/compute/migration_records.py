"""Migration records: one per move of an instance to another host (Nova's os-migrations), their
statuses (compute/states.py MIGRATION_*), and the compare-and-swap that moves them.

Who moves an instance: the scheduler starts a move (cloud/scheduler/moves.py: pre-flight
checks, the destination's claim), the conductor follows the hosts' reports through its steps
(cloud/conductor/migration_events.py), the reconciler finishes or undoes one that stopped
(cloud/conductor/reconciler.py), and the operations here confirm, revert, abort or force one on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from cloud import errors, events, rpc
from cloud.identity.context import RequestContext
from cloud.ids import parse_uuid
from compute_agent import messages as msg

from . import claims, states
from .models import MAX_LIST_LIMIT, HostDrain, Instance, Migration

LIVE = "live-migration"
COLD = "migration"
RESIZE = "resize"

_PROGRESS_FIELDS = ("memory_total", "memory_processed", "memory_remaining", "disk_total",
                    "disk_processed", "disk_remaining")


def create(ctx: RequestContext, instance: Instance, kind: str, *, status: str,
           requested_host: str | None = None, new_flavor: dict | None = None) -> Migration:
    return Migration.objects.create(
        instance=instance, migration_type=kind, status=status,
        source_compute=instance.host or "", source_node=instance.node or "",
        requested_host=requested_host, old_flavor=instance.flavor_snapshot,
        source_vm_state=instance.vm_state,
        new_flavor=new_flavor or instance.flavor_snapshot,
        user_id=ctx.user_id, project_id=ctx.project_id or "",
    )


def move(migration: Migration, from_statuses: Iterable[str], to_status: str,
         **changes: Any) -> bool:
    """The migration's compare-and-swap: to `to_status` (and `changes`) only from one of
    `from_statuses`; False, and nothing changed, from anywhere else (a stale or repeated step)."""
    moved = Migration.objects.filter(pk=migration.pk, status__in=list(from_statuses)).update(
        status=to_status, updated_at=timezone.now(), **changes)
    if moved:
        migration.status = to_status
        for name, value in changes.items():
            setattr(migration, name, value)
        _announce(migration)
    return bool(moved)


def _announce(migration: Migration) -> None:
    """Say that moves off the source host changed; a drain of that host takes its next step once
    one of its moves settles (finished waits for the drain's own confirmation)."""
    events.host_moves_changed(migration.source_compute)
    if migration.status in states.MIGRATION_FINAL or migration.status == states.MIGRATION_FINISHED:
        for drain_uuid in HostDrain.objects.filter(
                host=migration.source_compute, status=HostDrain.RUNNING).values_list("uuid",
                                                                                    flat=True):
            rpc.kick_drain(str(drain_uuid))


def record_progress(migration_id: str | int, progress: dict[str, int]) -> None:
    """Keep the figures of a running live migration (bytes of memory and disk)."""
    figures = {k: int(v) for k, v in progress.items() if k in _PROGRESS_FIELDS}
    if figures and Migration.objects.filter(pk=migration_id, status=states.MIGRATION_RUNNING).update(
            updated_at=timezone.now(), **figures):
        source = Migration.objects.filter(pk=migration_id).values_list("source_compute",
                                                                       flat=True).first()
        events.host_moves_changed(source or "")


def percent_done(migration: Migration) -> int:
    """How far a live migration's copy is, memory and disk together (0-100)."""
    total = (migration.memory_total or 0) + (migration.disk_total or 0)
    done = (migration.memory_processed or 0) + (migration.disk_processed or 0)
    return 0 if total <= 0 else max(0, min(100, round(100 * done / total)))


def current(instance: Instance) -> Migration | None:
    """The instance's move under way, if any (there is never more than one)."""
    return instance.migrations.filter(status__in=states.MIGRATION_IN_PROGRESS).first()


def get_migration(instance: Instance, migration_id: str) -> Migration:
    """One migration of the server, by its integer id (404 otherwise)."""
    found = instance.migrations.filter(pk=int(migration_id)).first() \
        if str(migration_id).isdigit() else None
    if found is None:
        raise errors.NotFound(f"Migration {migration_id} does not exist for instance "
                              f"{instance.uuid}.")
    return found


def of_server(instance: Instance, *, in_progress: bool = True) -> list[Migration]:
    """The server's migrations, newest first: those under way (Nova's servers/{id}/migrations
    lists only live migrations in progress), or all."""
    rows = instance.migrations.all()
    if in_progress:
        rows = rows.filter(status__in=states.MIGRATION_IN_PROGRESS)
    return list(rows.order_by("-created_at", "-id"))


def list_migrations(
    ctx: RequestContext,
    *,
    host: str | None = None,
    status: str | None = None,
    instance_uuid: str | None = None,
    migration_type: str | None = None,
    source_compute: str | None = None,
    user_id: str | None = None,
    project_id: str | None = None,
    changes_since: datetime | None = None,
    changes_before: datetime | None = None,
    limit: int | None = None,
    marker: str | None = None,
) -> list[Migration]:
    """os-migrations: every migration an admin asks for, newest first, filtered as Nova does."""
    rows: QuerySet[Migration] = Migration.objects.select_related("instance")
    if not ctx.is_admin:
        rows = rows.filter(project_id=ctx.project_id)
    if host:
        rows = rows.filter(Q(source_compute=host) | Q(dest_compute=host))
    if status:
        rows = rows.filter(status=status)
    if instance_uuid:
        uuid = parse_uuid(instance_uuid)
        rows = rows.filter(instance_id=uuid) if uuid else rows.none()
    if migration_type:
        rows = rows.filter(migration_type=migration_type)
    if source_compute:
        rows = rows.filter(source_compute=source_compute)
    if user_id:
        rows = rows.filter(user_id=user_id)
    if project_id:
        rows = rows.filter(project_id=project_id)
    if changes_since is not None:
        rows = rows.filter(updated_at__gte=changes_since)
    if changes_before is not None:
        rows = rows.filter(updated_at__lte=changes_before)
    rows = rows.order_by("-created_at", "-id")
    if marker:
        last = Migration.objects.filter(uuid=parse_uuid(marker)).first() \
            if parse_uuid(marker) else None
        if last is None:
            raise errors.BadRequest(f"Marker {marker} could not be found.")
        rows = rows.filter(Q(created_at__lt=last.created_at)
                           | Q(created_at=last.created_at, id__lt=last.id))
    return list(rows[: MAX_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)])


def abort(ctx: RequestContext, instance: Instance, migration: Migration,
          queued_too: bool = True) -> None:
    """Stop a live migration: one not started on its source yet is undone here at once; a running
    one is aborted by the source (its copy then fails, cancelled, and the guest stays). 400 for a
    migration that cannot be aborted (cold, or over), and with `queued_too` false (the API below
    2.65) for one not running yet, as Nova."""
    if migration.migration_type != LIVE:
        raise errors.BadRequest(f"Migration {migration.pk} is not a live migration: it cannot "
                                "be aborted.")
    if not queued_too and migration.status != states.MIGRATION_RUNNING:
        raise errors.BadRequest(
            f"Migration {migration.pk} state of instance {instance.uuid} is {migration.status}. "
            "Cannot abort live migration while the migration is in this state.")
    with transaction.atomic():
        if move(migration, [states.MIGRATION_QUEUED, states.MIGRATION_PREPARING],
                states.MIGRATION_CANCELLED):
            claims.undo_move(migration)
            Instance.objects.filter(pk=instance.pk, task_state=states.MIGRATING).update(
                task_state=None, updated_at=timezone.now())
            events.instance_changed(instance.pk)
            if migration.dest_compute:
                rpc.destroy(migration.dest_compute, msg.DestroyRequest(
                    request_id=ctx.request_id, instance_uuid=str(instance.uuid)))
            return
        if migration.status != states.MIGRATION_RUNNING:
            raise errors.BadRequest(f"Migration {migration.pk} of instance {instance.uuid} is "
                                    f"{migration.status}: it cannot be aborted.")
        rpc.to_host(migration.source_compute, msg.TASK_ABORT_MIGRATION,
                    _request(ctx, instance, migration))


def force_complete(ctx: RequestContext, instance: Instance, migration: Migration) -> None:
    """Make a running live migration converge (its source pauses the guest for the last copy)."""
    if migration.migration_type != LIVE or migration.status != states.MIGRATION_RUNNING:
        raise errors.BadRequest(f"Migration {migration.pk} of instance {instance.uuid} is not a "
                                f"running live migration ({migration.status}).")
    with transaction.atomic():
        rpc.to_host(migration.source_compute, msg.TASK_FORCE_COMPLETE_MIGRATION,
                    _request(ctx, instance, migration))


def _request(ctx: RequestContext, instance: Instance, migration: Migration) -> msg.MigrationRequest:
    return msg.MigrationRequest(
        request_id=ctx.request_id, instance_uuid=str(instance.uuid),
        migration_id=str(migration.pk), source_host=migration.source_compute,
        dest_host=migration.dest_compute or "", live=migration.migration_type == LIVE)
