"""Starting a move to another host: live migration, cold migration, and a resize that has no room
on its own host.

Everything a move needs is decided inside the request, in one transaction: the state rule, the
pre-flight checks (the destination exists, is enabled and up, can take migrations, runs the same
hypervisor at least as new with a compatible CPU), the destination chosen by the scheduler's own
filters and weighers, its room claimed (claims.claim_destination: the instance then holds claims
on both hosts), the migration record, and the destination asked to prepare. A move that cannot
happen is refused with 400 or 409 before anything moves, and a refused one leaves nothing behind;
Nova's conductor makes the same checks synchronously for the same reason.

The steps after that follow the hosts' reports (cloud/conductor/migration_events.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from cloud import errors, rpc
from cloud.compute import (
    claims,
    guest_kinds,
    guest_operations,
    migration_records,
    server_volumes,
    states,
)
from cloud.compute.hosts import compute_service, service_is_up
from cloud.compute.models import ComputeNode, Instance, Migration
from cloud.compute.operations import REGISTRY, Operation, runs
from cloud.compute.servers import flavor_snapshot
from cloud.compute.spawn import build_spawn_request
from cloud.compute.transitions import begin
from cloud.identity.context import RequestContext
from compute_agent import messages as msg

from .filters import run_filters
from .host_state import load_host_states, request_spec_for
from .loader import load_filters, load_weighers
from .weighers import order_hosts

log = logging.getLogger(__name__)


@runs("live_migrate")
def live_migrate(ctx: RequestContext, instance: Instance, *, host: str | None = None,
                 block_migration: bool | str = "auto") -> Migration:
    """Move the running guest to another host without stopping it, its disk copied (there is no
    shared storage to use, so block migration is what "auto" means)."""
    return _start(ctx, instance, REGISTRY["live_migrate"], migration_records.LIVE, host=host)


@runs("migrate")
def migrate(ctx: RequestContext, instance: Instance, *, host: str | None = None) -> Migration:
    """Move the guest to another host shut down, then running there until confirmed or reverted."""
    return _start(ctx, instance, REGISTRY["migrate"], migration_records.COLD, host=host)


@runs("resize")
def resize(ctx: RequestContext, instance: Instance, flavor_ref: str) -> Migration | None:
    """Resize on the server's own host when it has room (its claim grows in place), else move it
    to a host that has, with the new flavor (Nova's resize is always such a move)."""
    if guest_operations.resize_here(ctx, instance, flavor_ref):
        return None
    flavor = guest_operations.check_resize(instance, flavor_ref)
    if guest_kinds.is_container(instance):
        # Its host redefines it with the new limits, but libvirt's LXC driver cannot move it.
        raise errors.Conflict(
            f"There is not enough room on the container's host for flavor {flavor.name}, and "
            f"{guest_kinds.refusal('migrate')}.")
    source = ComputeNode.objects.filter(host=instance.host or "").first()
    if not (source and source.migration_uri):
        # A host that cannot send guests away (libvirt's test driver): as before, no room here.
        raise errors.Conflict(
            f"There is not enough room on the server's host for flavor {flavor.name}.")
    return _start(ctx, instance, _RESIZE_AWAY, migration_records.RESIZE,
                  new_flavor=flavor_snapshot(flavor), flavor=flavor)


# A resize that leaves its host runs through the steps of a cold migration.
_RESIZE_AWAY = dataclasses.replace(REGISTRY["resize"], task_state=states.RESIZE_PREP)


def _start(ctx: RequestContext, instance: Instance, operation: Operation, kind: str, *,
           host: str | None = None, new_flavor: dict | None = None, flavor: Any = None) -> Migration:
    source = instance.host or ""
    source_node = ComputeNode.objects.filter(host=source).first()
    if host is not None:
        _check_requested_host(source, host)
    live = kind == migration_records.LIVE
    if not (source_node and source_node.migration_uri):
        raise errors.BadRequest(f"Host {source or '(none)'} cannot migrate guests away: its "
                                "hypervisor takes no migrations.")
    changes: dict[str, Any] = {}
    if flavor is not None:
        changes = {"old_flavor_snapshot": instance.flavor_snapshot, "flavor": flavor,
                   "flavor_snapshot": new_flavor, "vcpus": flavor.vcpus,
                   "memory_mb": flavor.memory_mb,
                   # A volume is its root disk: still no local disk at the new size.
                   "root_gb": 0 if server_volumes.boots_from_volume(instance) else flavor.root_gb,
                   "ephemeral_gb": flavor.ephemeral_gb}
    with transaction.atomic():
        if flavor is not None:
            guest_operations.reserve_growth(ctx, instance, flavor)
        row = begin(ctx, instance, operation, **changes)
        migration = migration_records.create(
            ctx, row, kind, requested_host=host,
            status=states.MIGRATION_QUEUED if live else states.MIGRATION_PRE_MIGRATING,
            new_flavor=new_flavor)
        if flavor is not None:
            migration.old_flavor = changes["old_flavor_snapshot"]
            migration.save(update_fields=["old_flavor"])
        dest = _claim_destination(row, migration, source_node, host)
        migration_records.move(
            migration, [migration.status],
            states.MIGRATION_PREPARING if live else migration.status,
            dest_compute=dest.host, dest_node=dest.hypervisor_hostname, dest_host=dest.host_ip)
        rpc.to_host(dest.host, msg.TASK_PREPARE_MIGRATION, msg.MigrationRequest(
            request_id=ctx.request_id, instance_uuid=str(row.uuid),
            migration_id=str(migration.pk), source_host=source, dest_host=dest.host,
            dest_uri=dest.migration_uri, live=live,
            spawn=build_spawn_request(row, ctx.request_id, dest.host)))
    log.info("%s of %s: %s -> %s", kind, row.uuid, source, dest.host)
    return migration


def _check_requested_host(source: str, host: str) -> None:
    service = compute_service(host)
    if service is None:
        raise errors.BadRequest(f"Compute host {host} could not be found.")
    if host == source:
        raise errors.BadRequest("The target host can't be the same one.")
    if not service_is_up(service):
        raise errors.BadRequest(f"Compute service of {host} is unavailable at this time.")
    if service.disabled:
        raise errors.BadRequest(f"Compute service of {host} is disabled.")


def _claim_destination(instance: Instance, migration: Migration, source: ComputeNode,
                       requested: str | None) -> ComputeNode:
    return claim_best_host(instance, migration, ignore={source.host}, requested=requested,
                           why_not=lambda node: incompatibility(source, node), what="migration")


def claim_best_host(instance: Instance, migration: Migration, *, ignore: set[str],
                    requested: str | None, why_not: Callable[[ComputeNode], str],
                    what: str) -> ComputeNode:
    """The best host the filters pass (none of `ignore`; only `requested` when given) that
    `why_not` has nothing against, claimed for the move (claims.claim_destination); 400 saying
    why when there is none. Moves and evacuations both choose their destination so."""
    spec = dataclasses.replace(request_spec_for(instance), ignore_hosts=frozenset(ignore))
    candidates = [h for h in load_host_states() if requested in (None, h.host)]
    result = run_filters(load_filters(), candidates, spec)
    # Without the list of domains each host reports: nothing here reads it, and at a thousand
    # hosts it is most of what reading their rows would cost.
    nodes = {n.host: n for n in ComputeNode.objects.defer("domains", "load_average")
             .filter(host__in=[h.host for h in result.passed])}
    refused: list[str] = []
    for host_state in order_hosts(load_weighers(), result.passed, spec):
        node = nodes[host_state.host]
        why = why_not(node)
        if why:
            refused.append(f"{node.host}: {why}")
            continue
        disk_gb = instance.root_gb + instance.ephemeral_gb
        if claims.claim_destination(instance, migration, host=node.host, node_id=node.pk,
                                    vcpus=instance.vcpus, memory_mb=instance.memory_mb,
                                    disk_gb=disk_gb):
            return node
    reasons = "; ".join([result.describe().replace("\n", " ")] + refused)
    raise errors.BadRequest(f"No valid host was found for the {what}. {reasons}")


def incompatibility(source: ComputeNode, dest: ComputeNode) -> str:
    """Why `dest` cannot take a guest from `source`, or "" when it can: the same hypervisor, no
    older, the same CPU architecture and at least the source's CPU features, and a libvirt that
    takes migrations."""
    if not dest.migration_uri:
        return "its hypervisor takes no migrations"
    if dest.hypervisor_type != source.hypervisor_type:
        return f"hypervisor {dest.hypervisor_type}, not {source.hypervisor_type}"
    if dest.hypervisor_version < source.hypervisor_version:
        return (f"hypervisor version {dest.hypervisor_version} is older than "
                f"{source.hypervisor_version}")
    here, there = source.cpu_info or {}, dest.cpu_info or {}
    if here.get("arch") != there.get("arch"):
        return f"CPU architecture {there.get('arch')}, not {here.get('arch')}"
    missing = set(here.get("features") or []) - set(there.get("features") or [])
    if missing:
        return f"its CPU lacks {', '.join(sorted(missing))}"
    return ""

