"""Evacuating a server from a failed host (Nova's evacuate): what is checked first, in Nova's order
and with its errors, and how an evacuation ends.

An evacuation rebuilds the server from its image on another host: same uuid, ports, addresses,
floating IPs and metadata; what was on its disk is lost unless storage is shared (Kumo has none
yet). It is started by cloud/scheduler/evacuations.py (which chooses and claims the new host) as
the registry's "evacuate" operation: task rebuild_spawning, the server's host already the new
one, a Migration record of type "evacuation" holding the dead host's claim. The new host's
"rebuilt" report ends it here (`finish`), as does its failure or the reconciler giving up on it
(`fail`): the claim goes back to the dead host, and the scheduler is asked to try another host
until KUMO_MAX_BUILD_RETRIES hosts have failed, then the server is ERROR with a fault.
"""

from __future__ import annotations

import logging

from django.conf import settings

from cloud import errors, rpc
from compute_agent import messages as msg

from . import claims, hosts, migration_records, states
from .models import AggregateHost, Instance, Migration

log = logging.getLogger(__name__)

EVACUATION = "evacuation"  # Migration.migration_type, Nova's name
# The states Nova evacuates from (its check_instance_state on evacuate).
EVACUABLE = frozenset({states.ACTIVE, states.STOPPED, states.ERROR})
# Masakari's convention: this metadata key set to true marks a server for automatic recovery.
HA_METADATA_KEY = "HA_Enabled"
HA_AGGREGATE_KEY = "ha"
# How a recovery's refused evacuation is worded in the server's fault (the host watch reads it).
NOT_POSSIBLE = "Evacuation not possible"

_TRUE = ("true", "1", "yes", "on")


def check(instance: Instance, host: str | None) -> None:
    """May `instance` be evacuated to `host` (None: the scheduler's choice)? 404 for an unknown
    destination, 400 for the server's own host or a source host still up, 409 for a server in a
    state Nova does not evacuate from."""
    if host is not None and hosts.compute_service(host) is None:
        raise errors.NotFound(f"Compute host {host} not found.")
    if instance.host == host:
        raise errors.BadRequest("The target host can't be the same one.")
    if instance.vm_state not in EVACUABLE:
        raise errors.Conflict(f"Cannot 'evacuate' instance {instance.uuid} while it is in "
                              f"vm_state {instance.vm_state}")
    if instance.task_state is not None:
        raise errors.Conflict(f"Cannot 'evacuate' instance {instance.uuid} while it is in "
                              f"task_state {instance.task_state}")
    if not instance.host:
        raise errors.Conflict(f"Cannot 'evacuate' instance {instance.uuid}: it is on no host.")
    if hosts.host_is_up(instance.host):
        raise errors.BadRequest(f"Compute service of {instance.host} is still in use.")


def is_ha(instance: Instance) -> bool:
    """Whether the server is recovered automatically when its host dies: its metadata says
    HA_Enabled=True, or its host is in an aggregate whose metadata says ha=true."""
    if str((instance.metadata or {}).get(HA_METADATA_KEY, "")).lower() in _TRUE:
        return True
    return bool(instance.host) and any(
        str((meta or {}).get(HA_AGGREGATE_KEY, "")).lower() in _TRUE
        for meta in AggregateHost.objects.filter(host=instance.host).values_list(
            "aggregate__metadata", flat=True))


def of_instance(instance: Instance) -> Migration | None:
    """The evacuation under way for the instance, if any."""
    return instance.migrations.filter(migration_type=EVACUATION,
                                      status=states.MIGRATION_ACCEPTED).first()


def tried_hosts(instance: Instance, source: str) -> list[str]:
    """The hosts this run of evacuations of the instance from `source` failed on: the failed
    evacuations since its last move that ended otherwise (an older episode's do not count)."""
    tried: list[str] = []
    for kind, origin, status, dest in instance.migrations.order_by("-id").values_list(
            "migration_type", "source_compute", "status", "dest_compute"):
        if kind == EVACUATION and status == states.MIGRATION_ACCEPTED and not tried:
            continue  # the one being placed now
        if kind != EVACUATION or origin != source or status != states.MIGRATION_FAILED:
            break
        tried.append(dest or "")
    return [h for h in tried if h]


def gave_up(instance: Instance, source: str) -> bool:
    """Whether the evacuations from `source` failed on as many hosts as they may."""
    return len(tried_hosts(instance, source)) > settings.KUMO_MAX_BUILD_RETRIES


def finish(row: Instance) -> dict:
    """The new host rebuilt the server: the evacuation is done and the dead host's claim goes.
    Returns further changes for the instance's row. Runs in the caller's transaction."""
    migration = of_instance(row)
    if migration is None:
        return {}
    migration_records.move(migration, [states.MIGRATION_ACCEPTED], states.MIGRATION_DONE)
    claims.finish_move(migration)
    log.info("evacuation of %s from %s to %s done", row.uuid, migration.source_compute, row.host)
    if migration.source_vm_state == states.STOPPED or migration.stop_at_destination:
        # Nova leaves a stopped server stopped (and, from 2.95, every evacuated one): the new
        # host is asked to shut it down again.
        rpc.to_host(row.host or "", msg.TASK_STOP, msg.PowerRequest(
            request_id=f"req-evacuate-{str(row.uuid)[:8]}", instance_uuid=str(row.uuid),
            timeout=0))
        return {"vm_state": states.ACTIVE, "task_state": states.POWERING_OFF}
    return {}


def fail(row: Instance, reason: str, *, reported: bool = True) -> dict:
    """The new host could not rebuild the server. Returns the changes for the instance's row
    (the caller records the fault); runs in the caller's transaction.

    When the host said so (`reported`), its claim is given back, the server is the dead host's
    again, and another host is tried, KUMO_MAX_BUILD_RETRIES more at most (as a build), then the
    server is ERROR. When it never answered (the reconciler gave up), it may still be running
    the guest: trying elsewhere could run it twice, so the server stays there, ERROR, for that
    host's own failure handling (or a person: hard reboot, evacuate) to settle, and the dead
    host's claim goes."""
    migration = of_instance(row)
    if migration is None:
        return {}
    failed_on = row.host or ""
    migration_records.move(migration, [states.MIGRATION_ACCEPTED], states.MIGRATION_FAILED,
                           fault=reason[:255])
    if not reported:
        claims.finish_move(migration)
        log.warning("evacuation of %s to %s did not finish (%s); left there in ERROR", row.uuid,
                    failed_on, reason)
        return {"vm_state": states.ERROR}
    claims.undo_move(migration)
    source = migration.source_compute
    changes: dict = {"host": source, "node": migration.source_node or source,
                     "vm_state": migration.source_vm_state or row.vm_state}
    if not gave_up(row, source):
        log.warning("evacuation of %s to %s failed (%s); trying another host", row.uuid,
                    failed_on, reason)
        rpc.evacuate(str(row.uuid), f"req-evacuate-{str(row.uuid)[:8]}", source=source)
        return changes
    log.warning("evacuation of %s failed on %s, giving up: %s", row.uuid,
                ", ".join(tried_hosts(row, source)), reason)
    changes["vm_state"] = states.ERROR
    return changes
