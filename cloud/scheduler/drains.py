"""Draining a host: disable it and move every guest away, KUMO_DRAIN_CONCURRENCY at a time — running
and paused guests live, stopped ones cold (confirmed by the drain itself, since nobody waits to
check a guest that was off).

A drain has no process of its own. `kick()` takes one step under the drain's row lock: it follows
the moves under way, starts the next ones, and ends the drain when nothing is left. It runs as a
scheduler task when the drain starts, whenever one of its moves settles (migration_records.move
sends it), and on every reconciler pass, so a drain whose kick was lost, or whose scheduler died
mid-step, carries on: every step is idempotent (a guest already moving is followed, not moved
again; the moves' own state rules refuse a second start).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from cloud import errors, rpc
from cloud.compute import host_drains, states
from cloud.compute.host_drains import DONE, FAILED, MOVING, PENDING
from cloud.compute.models import HostDrain, Instance, Migration
from cloud.compute.operations import perform
from cloud.identity.context import RequestContext

log = logging.getLogger(__name__)

# What a drain does with a guest, by its state (anything else cannot move and is reported).
_LIVE = {states.ACTIVE, states.PAUSED}
_COLD = {states.STOPPED}


def start(ctx: RequestContext, host: str, reason: str = "") -> HostDrain:
    """Disable `host` and drain it; the first moves start at once, after the commit."""
    with transaction.atomic():
        drain = host_drains.start(ctx, host, reason)
        rpc.kick_drain(str(drain.uuid))
    log.info("drain of %s started by %s: %d guests", host, ctx.user_name, len(drain.guests))
    return drain


def kick(drain_uuid: str) -> str | None:
    """One step of a running drain; its status afterwards (None when it is not running)."""
    with transaction.atomic():
        drain = host_drains.locked(drain_uuid)
        if drain is None:
            return None
        ctx = host_drains.context_of(drain)
        changed = _follow(ctx, drain)
        changed |= _adopt_newcomers(drain)
        moving = sum(1 for p in drain.guests if p["state"] == MOVING)
        for part in drain.guests:
            if moving >= settings.KUMO_DRAIN_CONCURRENCY:
                break
            if part["state"] != PENDING:
                continue
            changed |= _start_move(ctx, drain, part)
            moving += part["state"] == MOVING
        if not any(p["state"] in (PENDING, MOVING) for p in drain.guests):
            host_drains.finish(drain)
            log.info("drain of %s %s: %s", drain.host, drain.status, host_drains.summary(drain))
        elif changed:
            host_drains.save_progress(drain)
        return drain.status


def _follow(ctx: RequestContext, drain: HostDrain) -> bool:
    """Bring each moving guest's part up to date with its migration; True if any changed."""
    changed = False
    moving = [p for p in drain.guests if p["state"] == MOVING]
    migrations = {m.pk: m for m in Migration.objects.filter(
        pk__in=[p["migration"] for p in moving]).select_related("instance")}
    for part in moving:
        migration = migrations.get(part["migration"])
        if migration is None or migration.instance.deleted:
            part.update(state=DONE, message="The server was deleted.")
        elif migration.status in (states.MIGRATION_COMPLETED, states.MIGRATION_CONFIRMED):
            part.update(state=DONE, message=f"Moved to {migration.dest_compute}.")
        elif migration.status == states.MIGRATION_FINISHED:
            if not _confirm(ctx, migration, part):
                continue
        elif migration.status in states.MIGRATION_FINAL:
            part.update(state=FAILED, message=(
                f"The {migration.migration_type} ended {migration.status}; the server stayed on "
                f"{drain.host}."))
        else:
            continue
        changed = True
    return changed


def _confirm(ctx: RequestContext, migration: Migration, part: dict) -> bool:
    """A drained stopped guest arrived: keep it there (nobody else will confirm it)."""
    instance = migration.instance
    if instance.vm_state != states.RESIZED or instance.task_state is not None:
        return False  # still finishing on the destination
    try:
        with transaction.atomic():
            perform(ctx, instance, "confirm_resize")
    except errors.KumoError as exc:
        part.update(state=FAILED, message=f"Could not confirm the move: {exc}")
        return True
    part.update(state=DONE, message=f"Moved to {migration.dest_compute} (stopped).")
    return True


def _adopt_newcomers(drain: HostDrain) -> bool:
    """Guests that reached the host after the drain began (a boot placed just before it was
    disabled) are drained too."""
    newcomers = Instance.objects.filter(host=drain.host, deleted=False).exclude(
        uuid__in=[p["id"] for p in drain.guests]).order_by("created_at").values_list(
        "uuid", "display_name")
    drain.guests.extend(host_drains.new_part(uuid, name) for uuid, name in newcomers)
    return bool(newcomers)


def _start_move(ctx: RequestContext, drain: HostDrain, part: dict) -> bool:
    """Start the guest's move if it can go now; True if its part changed."""
    uuid = part["id"]
    instance = Instance.objects.filter(uuid=uuid, deleted=False).first()
    if instance is None or instance.host != drain.host:
        part.update(state=DONE, message="The server is no longer on the host.")
        return True
    if not host_drains.is_movable_now(instance):
        return False  # another task runs on it: the next step looks again
    if instance.vm_state in _LIVE:
        operation, arguments = "live_migrate", {"host": None, "block_migration": "auto"}
    elif instance.vm_state in _COLD:
        operation, arguments = "migrate", {"host": None}
    else:
        part.update(state=FAILED, message=f"A server in state {instance.status} cannot be moved.")
        return True
    try:
        # A savepoint: a refused move leaves nothing of itself, and the drain carries on.
        with transaction.atomic():
            migration = perform(ctx, instance, operation, **arguments)
    except errors.KumoError as exc:
        part.update(state=FAILED, message=str(exc))
        log.info("drain of %s: %s of %s refused: %s", drain.host, operation, uuid, exc)
        return True
    part.update(state=MOVING, migration=migration.pk, message="")
    return True
