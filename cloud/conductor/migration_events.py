"""A move to another host, step by step, as the hosts report it (the steps: compute_agent/messages.py
above TASK_PREPARE_MIGRATION; the start: cloud/scheduler/moves.py).

Each report moves the migration with a compare-and-swap from the status it expects, so a repeated
or stale report changes nothing. Claims follow: until the move is final the instance holds room
on both hosts; a completed (live) or confirmed (cold) move gives back the source's, a failed or
reverted one the destination's. A failure leaves the guest where it was, running as before.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from cloud import events, rpc
from cloud.compute import action_records, claims, migration_records, states
from cloud.compute.models import ComputeNode, Flavor, Instance, InstanceFault, Migration
from cloud.compute.spawn import build_spawn_request
from cloud.volumes import attachments
from compute_agent import messages as msg

log = logging.getLogger(__name__)

EVENT_MIGRATION = "compute_migration"


def _migration(event: msg.InstanceEvent) -> Migration | None:
    if not event.migration_id.isdigit():
        return None
    return Migration.objects.filter(pk=int(event.migration_id),
                                    instance_id=event.instance_uuid).first()


def _request(event: msg.InstanceEvent, migration: Migration, **fields: object) -> msg.MigrationRequest:
    return msg.MigrationRequest(
        request_id=event.request_id, instance_uuid=event.instance_uuid,
        migration_id=str(migration.pk), source_host=migration.source_compute,
        dest_host=migration.dest_compute or "",
        live=migration.migration_type == migration_records.LIVE, **fields)  # type: ignore[arg-type]


def _dest_uri(migration: Migration) -> str:
    node = ComputeNode.objects.filter(host=migration.dest_compute).first()
    return node.migration_uri if node else ""


def prepared(event: msg.InstanceEvent) -> None:
    """The destination is ready: the source copies the guest (live) or sends its disk (cold)."""
    migration = _migration(event)
    if migration is None:
        return
    with transaction.atomic():
        if migration_records.move(migration, [states.MIGRATION_PREPARING],
                                  states.MIGRATION_RUNNING):
            rpc.to_host(migration.source_compute, msg.TASK_LIVE_MIGRATE,
                        _request(event, migration, dest_uri=_dest_uri(migration)))
        elif migration_records.move(migration, [states.MIGRATION_PRE_MIGRATING],
                                    states.MIGRATION_MIGRATING):
            Instance.objects.filter(pk=migration.instance_id, task_state=states.RESIZE_PREP).update(
                task_state=states.RESIZE_MIGRATING, updated_at=timezone.now())
            events.instance_changed(migration.instance_id)
            rpc.to_host(migration.source_compute, msg.TASK_MIGRATE_DISK,
                        _request(event, migration, dest_uri=_dest_uri(migration)))


def progress(event: msg.InstanceEvent) -> None:
    migration_records.record_progress(event.migration_id, event.progress)
    migration = _migration(event)
    if migration is not None:
        Instance.objects.filter(pk=migration.instance_id, task_state=states.MIGRATING).update(
            progress=migration_records.percent_done(migration))
        events.instance_changed(migration.instance_id)


def live_migrated(event: msg.InstanceEvent) -> None:
    """The guest runs on the destination: the move is final."""
    migration = _migration(event)
    if migration is None:
        return
    with transaction.atomic():
        if not migration_records.move(migration, [states.MIGRATION_RUNNING],
                                      states.MIGRATION_COMPLETED):
            return
        Instance.objects.filter(pk=migration.instance_id).update(
            host=migration.dest_compute, node=migration.dest_node, task_state=None,
            power_state=event.power_state or msg.POWER_RUNNING, progress=100,
            console_port=None, console_socket="", updated_at=timezone.now())
        claims.finish_move(migration)
        attachments.follow(str(migration.instance_id), migration.dest_compute or "")
        _recorded(event, migration, action_records.SUCCESS, finish=True)
    log.info("instance %s live-migrated %s -> %s", migration.instance_id,
             migration.source_compute, migration.dest_compute)


def disk_migrated(event: msg.InstanceEvent) -> None:
    """The disk is on the destination: it starts the guest there (resized if asked)."""
    migration = _migration(event)
    if migration is None:
        return
    with transaction.atomic():
        if not migration_records.move(migration, [states.MIGRATION_MIGRATING],
                                      states.MIGRATION_POST_MIGRATING):
            return
        # From here the instance lives on the destination (Nova moves it at this step too).
        Instance.objects.filter(pk=migration.instance_id).update(
            host=migration.dest_compute, node=migration.dest_node,
            task_state=states.RESIZE_FINISH, console_port=None, console_socket="",
            updated_at=timezone.now())
        attachments.follow(str(migration.instance_id), migration.dest_compute or "")
        instance = Instance.objects.get(pk=migration.instance_id)
        events.instance_changed(instance.pk)
        rpc.to_host(migration.dest_compute or "", msg.TASK_FINISH_MIGRATION, _request(
            event, migration, spawn=build_spawn_request(instance, event.request_id),
            power_on=migration.source_vm_state != states.STOPPED))


def finished(event: msg.InstanceEvent) -> None:
    """The guest runs on the destination, waiting to be confirmed or reverted (VERIFY_RESIZE)."""
    migration = _migration(event)
    if migration is None:
        return
    with transaction.atomic():
        if not migration_records.move(migration, [states.MIGRATION_POST_MIGRATING],
                                      states.MIGRATION_FINISHED):
            return
        Instance.objects.filter(pk=migration.instance_id).update(
            vm_state=states.RESIZED, task_state=None, power_state=event.power_state,
            updated_at=timezone.now())
        _recorded(event, migration, action_records.SUCCESS, finish=True)


def reverted(event: msg.InstanceEvent) -> None:
    """The guest runs on its source again, as it was: the destination's claim goes."""
    migration = _migration(event)
    if migration is None:
        return
    with transaction.atomic():
        if not migration_records.move(migration, [states.MIGRATION_REVERTING],
                                      states.MIGRATION_REVERTED):
            return
        done = states.ACTIVE if event.power_state != msg.POWER_SHUTDOWN else states.STOPPED
        Instance.objects.filter(pk=migration.instance_id).update(
            host=migration.source_compute, node=migration.source_node, vm_state=done,
            task_state=None, power_state=event.power_state, console_port=None,
            console_socket="", updated_at=timezone.now())
        claims.undo_move(migration)
        attachments.follow(str(migration.instance_id), migration.source_compute or "")
        _recorded(event, migration, action_records.SUCCESS, finish=True)


def failed(event: msg.InstanceEvent) -> None:
    """A step failed: the migration ends failed (or cancelled, when it was aborted), the guest
    stays on (or returns to) its source, and the destination gives back its room and files."""
    migration = _migration(event)
    if migration is None:
        return
    cancelled = "cancel" in event.message.lower() or "abort" in event.message.lower()
    end = states.MIGRATION_CANCELLED if cancelled else states.MIGRATION_FAILED
    with transaction.atomic():
        was = migration.status
        if not migration_records.move(
            migration, states.MIGRATION_IN_PROGRESS - {states.MIGRATION_FINISHED}, end,
            fault=(event.message or "the migration failed")[:255],
        ):
            return
        undo_move(migration, request_id=event.request_id, cold_step=was, message=event.message)
        _recorded(event, migration, action_records.ERROR, finish=True)
    log.warning("migration %s of %s failed on %s: %s", migration.pk, migration.instance_id,
                event.host, event.message)


def undo_move(migration: Migration, *, request_id: str, cold_step: str, message: str) -> None:
    """Put the instance back as it was on its source (inside the caller's transaction): claims,
    flavor, host and task; the destination destroys whatever it prepared, and a cold move's
    source starts the guest it shut down. Shared by a failed step and the reconciler."""
    instance = Instance.objects.get(pk=migration.instance_id)
    back: dict[str, object] = {"host": migration.source_compute, "node": migration.source_node,
                               "task_state": None, "updated_at": timezone.now(),
                               "console_port": None, "console_socket": ""}
    if migration.migration_type == migration_records.RESIZE and instance.old_flavor_snapshot:
        old = instance.old_flavor_snapshot
        back.update(flavor=Flavor.objects.filter(flavorid=old.get("id")).first(),
                    flavor_snapshot=old, old_flavor_snapshot=None, vcpus=old["vcpus"],
                    memory_mb=old["ram"], root_gb=old["disk"],
                    ephemeral_gb=old.get("ephemeral", 0))
    if migration.migration_type != migration_records.LIVE:
        back["vm_state"] = migration.source_vm_state or states.ACTIVE
    Instance.objects.filter(pk=instance.pk).update(**back)
    claims.undo_move(migration)
    InstanceFault.objects.create(instance=instance, code=500, host=migration.dest_compute or "",
                                 message=f"Migration failed: {message}"[:255])
    events.instance_changed(instance.pk)
    if migration.dest_compute:
        rpc.destroy(migration.dest_compute, msg.DestroyRequest(
            request_id=request_id, instance_uuid=str(instance.pk)))
    if (migration.migration_type != migration_records.LIVE
            and cold_step != states.MIGRATION_PRE_MIGRATING
            and migration.source_vm_state == states.ACTIVE):
        # The source shut the running guest down to send its disk: it starts again as it was.
        refreshed = Instance.objects.get(pk=instance.pk)
        rpc.to_host(migration.source_compute, msg.TASK_REVERT_MIGRATION, msg.MigrationRequest(
            request_id=request_id, instance_uuid=str(instance.pk), migration_id=str(migration.pk),
            source_host=migration.source_compute, dest_host=migration.dest_compute or "",
            live=False, spawn=build_spawn_request(refreshed, request_id,
                                                 migration.source_compute)))


def _recorded(event: msg.InstanceEvent, migration: Migration, result: str, *,
              finish: bool) -> None:
    events.instance_changed(migration.instance_id)
    action_records.record_event(
        str(migration.instance_id), EVENT_MIGRATION, result, host=event.host,
        details=f"{migration.migration_type} {migration.source_compute} -> "
                f"{migration.dest_compute}: {migration.status}"
                + (f" ({event.message})" if event.message else ""),
        finish_action=finish)


HANDLERS = {
    msg.EVENT_MIGRATION_PREPARED: prepared,
    msg.EVENT_MIGRATION_PROGRESS: progress,
    msg.EVENT_LIVE_MIGRATED: live_migrated,
    msg.EVENT_DISK_MIGRATED: disk_migrated,
    msg.EVENT_MIGRATION_FINISHED: finished,
    msg.EVENT_MIGRATION_REVERTED: reverted,
}
