"""Starting an evacuation: a server of a dead host rebuilt on another one.

As with the moves (moves.py), everything is decided in one transaction: the checks
(compute/evacuation.py: Nova's order and errors), the new host chosen by the scheduler's own
filters and weighers with the dead host and the hosts earlier tries failed on ignored, its room
claimed (the dead host's claim is held by the evacuation's Migration record until the rebuild is
done), the server's host switched to the new one (its ports, DHCP lease and security groups then
follow it there: the network plane derives a port's host from its server's), and the new host
asked to rebuild it from its image. An operator's request that cannot be carried out is a 400 or
409 and leaves nothing; a recovery's (the host watch's) is recorded as the instance's fault.
"""

from __future__ import annotations

import dataclasses
import logging

from django.db import transaction

from cloud import errors, rpc
from cloud.compute import evacuation, hosts, migration_records, states
from cloud.compute.models import ComputeNode, Instance, InstanceFault, Migration
from cloud.compute.operations import REGISTRY, runs
from cloud.compute.spawn import build_spawn_request
from cloud.compute.transitions import begin
from cloud.identity.context import RequestContext
from compute_agent import messages as msg

from .moves import claim_best_host

log = logging.getLogger(__name__)

# Who evacuates when no person asked: the host watch's recoveries and their retries.
RECOVERY = RequestContext(user_id="", user_name="kumo-recovery", project_id=None,
                          project_name=None, roles=("admin",), request_id="req-recovery")


@runs("evacuate")
def evacuate(ctx: RequestContext, instance: Instance, *, host: str | None = None,
             stop: bool = False) -> Migration:
    """Rebuild `instance` of a dead host on `host` (None: the scheduler's choice); with `stop`
    (the API from 2.95) it is left stopped there."""
    evacuation.check(instance, host)
    source = instance.host or ""
    with transaction.atomic():
        row = begin(ctx, instance, REGISTRY["evacuate"])
        migration = migration_records.create(ctx, row, evacuation.EVACUATION,
                                             status=states.MIGRATION_ACCEPTED, requested_host=host)
        if stop:
            migration.stop_at_destination = True
            migration.save(update_fields=["stop_at_destination"])
        dest = _claim(row, migration, source, host)
        migration_records.move(migration, [states.MIGRATION_ACCEPTED],
                               states.MIGRATION_ACCEPTED, dest_compute=dest.host,
                               dest_node=dest.hypervisor_hostname, dest_host=dest.host_ip)
        Instance.objects.filter(pk=row.pk).update(host=dest.host, node=dest.hypervisor_hostname,
                                                  console_port=None, console_socket="")
        row.host, row.node = dest.host, dest.hypervisor_hostname
        rpc.to_host(dest.host, msg.TASK_REBUILD, build_spawn_request(row, ctx.request_id,
                                                                     dest.host))
    log.info("evacuation of %s: %s -> %s", row.uuid, source, dest.host)
    return migration


def evacuate_for_recovery(instance_uuid: str, request_id: str, source: str) -> str:
    """The scheduler task's side: evacuate from the dead host `source` with the recovery's
    authority. Nothing happens to a server no longer there, busy with a task (the host watch asks
    again later) or whose host is back; one that cannot be evacuated (no room anywhere, a state
    Nova does not evacuate from) gets the reason as its fault, which the host watch shows.
    Returns the new host, or "" when none."""
    instance = Instance.objects.filter(uuid=instance_uuid, deleted=False).first()
    if instance is None or instance.host != source or instance.task_state is not None:
        return ""
    ctx = dataclasses.replace(RECOVERY, request_id=request_id)
    try:
        migration = evacuate(ctx, instance)
    except errors.KumoError as exc:
        log.warning("cannot evacuate %s: %s", instance_uuid, exc)
        if hosts.host_is_up(source):
            return ""  # its host came back: nothing to recover
        InstanceFault.objects.create(instance=instance, code=exc.status, host=instance.host,
                                     message=f"{evacuation.NOT_POSSIBLE}: {exc}"[:255])
        return ""
    return migration.dest_compute or ""


def _claim(instance: Instance, migration: Migration, source: str,
           requested: str | None) -> ComputeNode:
    """The best host for it: not the dead one, nor one an earlier try failed on, and of the dead
    host's hypervisor type (it runs the same image); no migration ability is needed."""
    source_node = ComputeNode.objects.filter(host=source).first()
    kind = source_node.hypervisor_type if source_node else None

    def why_not(node: ComputeNode) -> str:
        return f"hypervisor {node.hypervisor_type}, not {kind}" if (
            kind and node.hypervisor_type != kind) else ""

    return claim_best_host(instance, migration,
                           ignore={source, *evacuation.tried_hosts(instance, source)},
                           requested=requested, why_not=why_not, what="evacuation")
