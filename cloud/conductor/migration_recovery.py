"""A move that stopped half-way (a host died, a report was lost, a process was killed) is finished
or undone by the reconciler, from what the hosts' latest reports show, never guessed.

The guest is wherever a host reports its domain running: on the destination only, the move is
over and is finished as the lost report would have; on the source, or nowhere that reports, it is
undone (the destination gives back its room and removes what it prepared, a cold move's source
starts the guest it kept). Past KUMO_TASK_DEADLINES["migrating"] seconds without news (the
migration's own updated_at, which every progress report refreshes).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud.compute import action_records, hosts, migration_records, states
from cloud.compute.models import ComputeNode, Instance, Migration
from compute_agent import messages as msg

from . import migration_events

MOVE_TASKS = frozenset({states.MIGRATING, states.RESIZE_PREP, states.RESIZE_MIGRATING,
                        states.RESIZE_MIGRATED, states.RESIZE_FINISH, states.RESIZE_REVERTING})


def recover(instance: Instance, migration: Migration) -> str:
    """Finish or undo one stuck move; what was done ("" when it is not stuck yet)."""
    deadline = settings.KUMO_TASK_DEADLINES.get("migrating", settings.KUMO_TASK_DEADLINES["default"])
    if migration.updated_at > timezone.now() - timedelta(seconds=float(deadline)):
        return ""
    on_dest = _runs_on(migration.dest_compute, instance)
    on_source = _runs_on(migration.source_compute, instance)
    event = msg.InstanceEvent(
        request_id=f"req-reconcile-{str(instance.uuid)[:8]}", instance_uuid=str(instance.uuid),
        host="", event="", migration_id=str(migration.pk), power_state=msg.POWER_RUNNING)
    action_records.record_event(
        str(instance.uuid), action_records.EVENT_REDRIVE, action_records.SUCCESS,
        host=instance.host, details=f"migration {migration.pk} stuck in {migration.status}: "
        f"running on the destination: {on_dest}, on the source: {on_source}")
    if on_dest and not on_source:
        if migration.status == states.MIGRATION_RUNNING:
            migration_events.live_migrated(event)
            return "migrations finished"
        if migration.status == states.MIGRATION_POST_MIGRATING:
            migration_events.finished(event)
            return "migrations finished"
    if migration.status == states.MIGRATION_REVERTING and on_source:
        migration_events.reverted(event)
        return "migrations finished"
    with transaction.atomic():
        was = migration.status
        if not migration_records.move(migration, states.MIGRATION_IN_PROGRESS,
                                      states.MIGRATION_ERROR,
                                      fault="no report from its hosts in time"):
            return ""
        migration_events.undo_move(migration, request_id=event.request_id, cold_step=was,
                                   message=f"no report from {migration.dest_compute} or "
                                   f"{migration.source_compute} in time")
    return "migrations undone"


def _runs_on(host: str | None, instance: Instance) -> bool:
    """The host is up and its latest report lists the instance's domain running."""
    if not host or not hosts.host_is_up(host):
        return False
    node = ComputeNode.objects.filter(host=host).first()
    return any(d.get("uuid") == str(instance.uuid) and d.get("power_state") == msg.POWER_RUNNING
               for d in (node.domains if node else None) or [])
