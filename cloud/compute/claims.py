"""Claiming a host's resources for one instance, and giving them back.

A claim is one transaction of three conditional writes; any that does not land rolls all back:
  1. the node's *_used columns rise in ONE UPDATE whose WHERE re-checks capacity × ratio, so two
     schedulers racing for the last room on a node cannot both win (the row lock serialises them
     and the loser's WHERE is re-evaluated against the winner's numbers);
  2. the Allocation row is created; it is one-to-one with the instance, so a redelivered schedule
     task cannot claim a second time;
  3. the instance moves from scheduling (no host) to spawning on the node; if it was deleted or
     already placed meanwhile, nothing moves and the claim is undone.
On PostgreSQL the three are one statement (`_ONE_STATEMENT`) that locks the instance's row first
if it is still waiting, so it writes all or nothing by itself: one round trip and no savepoint.
Before them, a member of a server group locks the group's row and re-checks the hard policy against
where the other members are now: two members scheduled at once cannot both take one host of an
anti-affinity group (or two hosts of an affinity group), because the second waits for the first.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from cloud import metrics
from cloud.metrics.families import CLAIM_CONFLICTS, CLAIMS

from . import server_groups, states
from .models import Allocation, ComputeNode, Instance, Migration

log = logging.getLogger(__name__)


# Kinds and refusal reasons, as /metrics labels them (kumo_claims_total, kumo_claim_conflicts_total).
INSTANCE, MOVE, RESIZE = "instance", "move", "resize"
NO_ROOM, GROUP_POLICY, INSTANCE_CHANGED, ALREADY_CLAIMED, NO_CLAIM = (
    "no_room", "group_policy", "instance_changed", "already_claimed", "no_claim")


class _Refused(Exception):
    """A conditional write changed no row: roll the claim back."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _counted(kind: str, refused: str | None) -> None:
    metrics.inc(CLAIMS, kind)
    if refused is not None:
        metrics.inc(CLAIM_CONFLICTS, kind, refused)


def claim(instance: Instance, *, host: str, node: str, node_id: int) -> bool:
    """Claim the instance's flavor on `node_id` (the node `node` of `host`); True only if all
    three writes landed. The scheduler chose the node; this re-checks everything that matters."""
    return bool(_claim(instance, host, node, node_id, skip_if_busy=False))


def claim_unless_busy(instance: Instance, *, host: str, node: str, node_id: int) -> bool | None:
    """As `claim`, but None at once, with nothing claimed, when another claim holds the node's
    row lock at this moment (instead of waiting for that claim's commit). A scheduler then tries
    its next host rather than queueing behind the others on the same best host, and comes back to
    this one only if nothing else fits. SQLite has no row locks: never None there."""
    return _claim(instance, host, node, node_id, skip_if_busy=True)


def _claim(instance: Instance, host: str, node: str, node_id: int, *,
           skip_if_busy: bool) -> bool | None:
    vcpus = instance.vcpus
    memory_mb = instance.memory_mb
    disk_gb = instance.root_gb + instance.ephemeral_gb
    one_statement = connection.vendor == "postgresql"
    try:
        # On PostgreSQL the claim is one statement that writes all or nothing, so it needs no
        # savepoint of its own (and raises nothing inside the block, which would doom the
        # caller's transaction); elsewhere three statements, undone together if one does not land.
        with transaction.atomic(savepoint=not one_statement):
            if not _group_policy_holds(instance, host):
                outcome: str | None = GROUP_POLICY
            elif one_statement:
                outcome = _claim_in_one_statement(instance, host, node, node_id, vcpus,
                                                  memory_mb, disk_gb, skip_if_busy=skip_if_busy)
            else:
                outcome = _claim_in_steps(instance, host, node, node_id, vcpus, memory_mb, disk_gb)
    except _Refused as refused:
        outcome = refused.reason
    except IntegrityError:
        outcome = ALREADY_CLAIMED
    if outcome is None:
        return None
    if outcome != _CLAIMED:
        log.info("claim of %s on %s refused: %s", instance.pk, host,
                 _REFUSALS[outcome].format(node=node))
        _counted(INSTANCE, outcome)
        return False
    _counted(INSTANCE, None)
    return True


def _claim_in_steps(instance: Instance, host: str, node: str, node_id: int, vcpus: int,
                    memory_mb: int, disk_gb: int) -> str:
    # The three writes of the module's docstring, one statement each; _Refused undoes them.
    if not _raise_usage(node_id, vcpus, memory_mb, disk_gb):
        raise _Refused(NO_ROOM, f"node {node} has no room left")
    Allocation.objects.create(
        instance_id=instance.pk,
        node_id=node_id,
        vcpus=vcpus,
        memory_mb=memory_mb,
        disk_gb=disk_gb,
    )
    moved = Instance.objects.filter(
        uuid=instance.pk,
        deleted=False,
        task_state=states.SCHEDULING,
        host__isnull=True,
    ).update(host=host, node=node, task_state=states.SPAWNING)
    if moved != 1:
        raise _Refused(INSTANCE_CHANGED, "instance is no longer waiting to be scheduled")
    return _CLAIMED


_CLAIMED = "claimed"
_REFUSALS = {GROUP_POLICY: "the server group's policy no longer allows this host",
             NO_ROOM: "node {node} has no room left",
             INSTANCE_CHANGED: "instance is no longer waiting to be scheduled",
             ALREADY_CLAIMED: "instance already claimed"}
_NODE, _ALLOCATION, _INSTANCE = (ComputeNode._meta.db_table, Allocation._meta.db_table,
                                 Instance._meta.db_table)
# The three writes as one PostgreSQL statement, all or nothing with no savepoint: the instance row
# is locked first if it is still waiting (so the move at the end cannot fail once the rest has
# landed), the node's counters rise only where the room is still there, and the allocation and the
# move follow only from those. `node` takes the node's row lock; SKIP LOCKED when the caller would
# rather try another host than wait (then "busy" is nothing claimed at all). Written out because
# the ORM has no data-modifying WITH; the arithmetic is _raise_usage's.
_ONE_STATEMENT = f"""
WITH node AS MATERIALIZED (
    SELECT id FROM {_NODE} WHERE id = %(node_id)s FOR NO KEY UPDATE {{skip}}
), waiting AS MATERIALIZED (
    SELECT uuid FROM {_INSTANCE} WHERE uuid = %(instance)s AND NOT deleted
        AND task_state = %(scheduling)s AND host IS NULL
        AND NOT EXISTS (SELECT 1 FROM {_ALLOCATION} WHERE instance_id = %(instance)s)
        AND EXISTS (SELECT 1 FROM node)
    FOR NO KEY UPDATE
), raised AS (
    UPDATE {_NODE} SET vcpus_used = vcpus_used + %(vcpus)s,
        memory_mb_used = memory_mb_used + %(memory_mb)s, local_gb_used = local_gb_used + %(disk_gb)s
    WHERE id IN (SELECT id FROM node) AND EXISTS (SELECT 1 FROM waiting)
        AND vcpus_used <= vcpus * cpu_allocation_ratio - %(vcpus)s
        AND memory_mb_used <= memory_mb * ram_allocation_ratio - %(memory_mb)s
        AND local_gb_used <= local_gb * disk_allocation_ratio - %(disk_gb)s
    RETURNING id
), allocated AS (
    INSERT INTO {_ALLOCATION} (instance_id, node_id, vcpus, memory_mb, disk_gb, created_at)
    SELECT %(instance)s, id, %(vcpus)s, %(memory_mb)s, %(disk_gb)s, %(now)s FROM raised
    RETURNING id
), moved AS (
    UPDATE {_INSTANCE} SET host = %(host)s, node = %(node)s, task_state = %(spawning)s
    WHERE uuid IN (SELECT uuid FROM waiting) AND EXISTS (SELECT 1 FROM allocated)
    RETURNING uuid
)
SELECT (SELECT count(*) FROM node), (SELECT count(*) FROM waiting), (SELECT count(*) FROM moved),
    EXISTS (SELECT 1 FROM {_ALLOCATION} WHERE instance_id = %(instance)s)
"""
_CLAIM_WAITING = _ONE_STATEMENT.format(skip="")
_CLAIM_UNLESS_BUSY = _ONE_STATEMENT.format(skip="SKIP LOCKED")


def _claim_in_one_statement(instance: Instance, host: str, node: str, node_id: int, vcpus: int,
                            memory_mb: int, disk_gb: int, *, skip_if_busy: bool) -> str | None:
    """_CLAIMED, a refusal reason (nothing written), or None: the node is busy (nothing written)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_UNLESS_BUSY if skip_if_busy else _CLAIM_WAITING, {
            "node_id": node_id, "instance": instance.pk, "scheduling": states.SCHEDULING,
            "spawning": states.SPAWNING, "host": host, "node": node, "vcpus": vcpus,
            "memory_mb": memory_mb, "disk_gb": disk_gb, "now": timezone.now(),
        })
        locked, waiting, moved, claimed_before = cursor.fetchone()
    if not locked:
        # The node's row is gone (a removed host) when waiting; only busy when skipping.
        return None if skip_if_busy else NO_ROOM
    if not waiting:
        return ALREADY_CLAIMED if claimed_before else INSTANCE_CHANGED
    return _CLAIMED if moved else NO_ROOM


# Several claims as one PostgreSQL statement, for a scheduler that decided several waiting boots
# together (cloud/scheduler/batch.py): each instance all or nothing, as `_ONE_STATEMENT`, and each
# node's counters raised once by the sum of what its requests ask, where that sum still fits. A
# node another claim holds is skipped (its requests: busy, nothing written); a node without room
# for its whole share refuses all of that share. The caller holds the instances' row locks
# already (so `waiting` never waits), and the nodes are only ever taken SKIP LOCKED, so this
# statement waits for no lock at all and cannot deadlock with single claims.
_MANY_STATEMENT = f"""
WITH req AS (
    SELECT * FROM unnest(%(instances)s::uuid[], %(node_ids)s::bigint[], %(hosts)s::text[],
        %(nodes)s::text[], %(vcpus)s::bigint[], %(memory_mb)s::bigint[], %(disk_gb)s::bigint[])
        AS r(instance, node_id, host, node, vcpus, memory_mb, disk_gb)
), waiting AS MATERIALIZED (
    SELECT uuid FROM {_INSTANCE} i WHERE uuid IN (SELECT instance FROM req) AND NOT deleted
        AND task_state = %(scheduling)s AND host IS NULL
        AND NOT EXISTS (SELECT 1 FROM {_ALLOCATION} a WHERE a.instance_id = i.uuid)
    FOR NO KEY UPDATE
), want AS (
    SELECT node_id, sum(vcpus) AS vcpus, sum(memory_mb) AS memory_mb, sum(disk_gb) AS disk_gb
    FROM req WHERE instance IN (SELECT uuid FROM waiting) GROUP BY node_id
), node AS MATERIALIZED (
    SELECT id FROM {_NODE} WHERE id IN (SELECT node_id FROM want) ORDER BY id
    FOR NO KEY UPDATE SKIP LOCKED
), raised AS (
    UPDATE {_NODE} n SET vcpus_used = n.vcpus_used + w.vcpus,
        memory_mb_used = n.memory_mb_used + w.memory_mb, local_gb_used = n.local_gb_used + w.disk_gb
    FROM want w
    WHERE n.id = w.node_id AND n.id IN (SELECT id FROM node)
        AND n.vcpus_used <= n.vcpus * n.cpu_allocation_ratio - w.vcpus
        AND n.memory_mb_used <= n.memory_mb * n.ram_allocation_ratio - w.memory_mb
        AND n.local_gb_used <= n.local_gb * n.disk_allocation_ratio - w.disk_gb
    RETURNING n.id
), allocated AS (
    INSERT INTO {_ALLOCATION} (instance_id, node_id, vcpus, memory_mb, disk_gb, created_at)
    SELECT instance, node_id, vcpus, memory_mb, disk_gb, %(now)s FROM req
    WHERE node_id IN (SELECT id FROM raised) AND instance IN (SELECT uuid FROM waiting)
    RETURNING instance_id
), moved AS (
    UPDATE {_INSTANCE} i SET host = r.host, node = r.node, task_state = %(spawning)s
    FROM req r WHERE i.uuid = r.instance AND i.uuid IN (SELECT instance_id FROM allocated)
    RETURNING i.uuid
)
SELECT r.instance, r.instance IN (SELECT uuid FROM waiting), r.node_id IN (SELECT id FROM node),
    r.instance IN (SELECT uuid FROM moved), (SELECT count(*) FROM allocated)
FROM req r
"""


def claim_many(wanted: list[tuple[Instance, str, str, int]]) -> dict[str, bool | None]:
    """Claim, in one statement, each (instance, host, node, node_id) of `wanted`, as `claim_unless_busy`
    claims one (PostgreSQL only): by instance id, True (claimed), False (refused: no room on its
    node for every request there, or the instance no longer waits) or None (its node is held by
    another claim: nothing written). The caller holds the instances' row locks, and every instance
    is in no server group (no group lock or policy check is made here)."""
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_MANY_STATEMENT, {
            "instances": [i.pk for i, *_ in wanted], "node_ids": [n for *_, n in wanted],
            "hosts": [h for _, h, _, _ in wanted], "nodes": [n for _, _, n, _ in wanted],
            "vcpus": [i.vcpus for i, *_ in wanted], "memory_mb": [i.memory_mb for i, *_ in wanted],
            "disk_gb": [i.root_gb + i.ephemeral_gb for i, *_ in wanted],
            "scheduling": states.SCHEDULING, "spawning": states.SPAWNING, "now": timezone.now(),
        })
        rows = cursor.fetchall()
    placed = sum(1 for *_, moved, _ in rows if moved)
    if rows and placed != rows[0][4]:
        # Cannot happen while the caller holds the instances' locks; never commit it if it does.
        raise IntegrityError(f"{rows[0][4]} allocations written for {placed} instances moved")
    outcomes: dict[str, bool | None] = {}
    for instance, waiting, locked, moved, _ in rows:
        refused = None if moved else INSTANCE_CHANGED if not waiting else (
            NO_ROOM if locked else None)
        if moved or refused is not None:
            _counted(INSTANCE, refused)
        outcomes[str(instance)] = True if moved else (None if refused is None else False)
    return outcomes


def _raise_usage(node_id: int, vcpus: int, memory_mb: int, disk_gb: int) -> bool:
    """The one conditional UPDATE that takes room on a node, or changes nothing if it has none."""
    raised = ComputeNode.objects.filter(
        pk=node_id,
        vcpus_used__lte=F("vcpus") * F("cpu_allocation_ratio") - vcpus,
        memory_mb_used__lte=F("memory_mb") * F("ram_allocation_ratio") - memory_mb,
        local_gb_used__lte=F("local_gb") * F("disk_allocation_ratio") - disk_gb,
    ).update(
        vcpus_used=F("vcpus_used") + vcpus,
        memory_mb_used=F("memory_mb_used") + memory_mb,
        local_gb_used=F("local_gb_used") + disk_gb,
    )
    return raised == 1


def claim_destination(
    instance: Instance, migration: Migration, *, host: str, node_id: int, vcpus: int,
    memory_mb: int, disk_gb: int,
) -> bool:
    """Claim room for the instance on the destination of a move, and hand its claim on the source
    to the migration: from here until the move is final or undone it holds both. True only if
    everything landed (the node had room, the group allows the host, the instance had a claim)."""
    try:
        with transaction.atomic():
            if not _group_policy_holds(instance, host):
                raise _Refused(GROUP_POLICY, "the server group's policy does not allow this host")
            if not _raise_usage(node_id, vcpus, memory_mb, disk_gb):
                raise _Refused(NO_ROOM, f"host {host} has no room left")
            handed = Allocation.objects.filter(instance_id=instance.pk).update(
                instance=None, migration=migration)
            if handed != 1:
                raise _Refused(NO_CLAIM, "the instance holds no claim to move")
            Allocation.objects.create(instance_id=instance.pk, node_id=node_id, vcpus=vcpus,
                                      memory_mb=memory_mb, disk_gb=disk_gb)
    except _Refused as refused:
        log.info("claim of %s on %s for migration %s refused: %s", instance.pk, host,
                 migration.pk, refused)
        _counted(MOVE, refused.reason)
        return False
    _counted(MOVE, None)
    return True


def finish_move(migration: Migration) -> None:
    """The move is final: give back the source's room the migration held. Idempotent."""
    with transaction.atomic():
        held = Allocation.objects.filter(migration=migration).first()
        if held is not None:
            _give_back(held)


def undo_move(migration: Migration) -> None:
    """The move is undone: give back the destination's room and return the source's claim to
    the instance. Idempotent: once undone (or finished) there is nothing left to do."""
    with transaction.atomic():
        held = Allocation.objects.select_for_update(no_key=True).filter(migration=migration).first()
        if held is None:
            return
        mine = Allocation.objects.filter(instance_id=migration.instance_id).first()
        if mine is not None:
            _give_back(mine)
        Allocation.objects.filter(pk=held.pk).update(instance_id=migration.instance_id,
                                                     migration=None)


def _give_back(allocation: Allocation) -> None:
    # Whoever deletes the row lowers the counters; a concurrent release deletes nothing.
    deleted, _ = Allocation.objects.filter(pk=allocation.pk).delete()
    if not deleted:
        return
    # Greatest keeps a drifted counter at zero instead of failing the release forever; the
    # reconciler corrects drift from the allocations.
    ComputeNode.objects.filter(pk=allocation.node_id).update(
        vcpus_used=Greatest(F("vcpus_used") - allocation.vcpus, 0),
        memory_mb_used=Greatest(F("memory_mb_used") - allocation.memory_mb, 0),
        local_gb_used=Greatest(F("local_gb_used") - allocation.disk_gb, 0),
    )


def _group_policy_holds(instance: Instance, host: str) -> bool:
    # Locks the group row until the caller's transaction ends (a no-op outside a group).
    if _read_outside_any_group(instance):
        return True
    placement = server_groups.placement_for(str(instance.pk), lock=True)
    return placement is None or placement.hard_rule_allows(host)


def outside_any_group(instance: Instance) -> bool:
    """Whether the instance was read with its group membership and is in no group."""
    return _read_outside_any_group(instance)


def _read_outside_any_group(instance: Instance) -> bool:
    """Whether the instance was read together with its group membership (as the scheduler
    reads it) and has none. A server joins its group in the transaction that creates it
    (servers.py) and never later, so such an instance needs no group query and no group lock."""
    if not Instance.group_member.is_cached(instance):
        return False
    try:
        instance.group_member  # noqa: B018 - read for its DoesNotExist
    except ObjectDoesNotExist:
        return True
    return False


def release(instance_uuid: str) -> None:
    """Give back what the instance claimed. Idempotent: with no allocation there is nothing to do."""
    with transaction.atomic():
        allocation = Allocation.objects.filter(instance_id=instance_uuid).first()
        if allocation is not None:
            _give_back(allocation)


def resize_claim(instance_uuid: str, vcpus: int, memory_mb: int, disk_gb: int) -> bool:
    """Change the instance's claim on its own node to new sizes (a resize on the same host).

    One conditional UPDATE applies the difference, re-checking capacity for whatever grows; False
    (and nothing changed) when the node has no room for the growth or there is no claim.
    """
    with transaction.atomic():
        allocation = Allocation.objects.select_for_update(no_key=True).filter(instance_id=instance_uuid).first()
        if allocation is None:
            _counted(RESIZE, NO_CLAIM)
            return False
        dv = vcpus - allocation.vcpus
        dm = memory_mb - allocation.memory_mb
        dd = disk_gb - allocation.disk_gb
        checks = {}
        if dv > 0:
            checks["vcpus_used__lte"] = F("vcpus") * F("cpu_allocation_ratio") - dv
        if dm > 0:
            checks["memory_mb_used__lte"] = F("memory_mb") * F("ram_allocation_ratio") - dm
        if dd > 0:
            checks["local_gb_used__lte"] = F("local_gb") * F("disk_allocation_ratio") - dd
        changed = ComputeNode.objects.filter(pk=allocation.node_id, **checks).update(
            vcpus_used=Greatest(F("vcpus_used") + dv, 0),
            memory_mb_used=Greatest(F("memory_mb_used") + dm, 0),
            local_gb_used=Greatest(F("local_gb_used") + dd, 0),
        )
        if changed != 1:
            _counted(RESIZE, NO_ROOM)
            return False
        Allocation.objects.filter(pk=allocation.pk).update(
            vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb
        )
    _counted(RESIZE, None)
    return True


def release_leaked() -> int:
    """Release the claims of instances that are deleted, and the source claims of migrations that
    are over: no claim outlives what it is for. (An allocation row cascades away with its
    instance row; a deleted instance keeps its row for the API's history, so a delete that crashed
    before its release would leak.) How many."""
    leaked = list(
        Allocation.objects.filter(instance__deleted=True).values_list("instance_id", flat=True)
    )
    for instance_uuid in leaked:
        release(str(instance_uuid))
    over = list(Allocation.objects.filter(
        Q(migration__status__in=states.MIGRATION_FINAL) | Q(migration__instance__deleted=True)
    ))
    for allocation in over:
        _give_back(allocation)
    if leaked or over:
        log.warning("released %d claim(s) of deleted instances and %d of finished migrations",
                    len(leaked), len(over))
    return len(leaked) + len(over)


def correct_usage() -> int:
    """Set every node's *_used columns to the sum of its allocations where they drifted (a
    counter is only ever moved with its allocation, so drift means a crash between the two).
    How many nodes were corrected. Each node is read and written under its row lock, so a claim
    running at the same time is never counted twice or lost."""
    corrected = 0
    for node_id in _drifted_node_ids():
        with transaction.atomic():
            node = ComputeNode.objects.select_for_update(no_key=True).get(pk=node_id)
            totals = Allocation.objects.filter(node_id=node_id).aggregate(
                vcpus=Sum("vcpus"), memory_mb=Sum("memory_mb"), disk_gb=Sum("disk_gb"))
            truth = (totals["vcpus"] or 0, totals["memory_mb"] or 0, totals["disk_gb"] or 0)
            if (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == truth:
                continue
            log.warning("node %s used %s, its claims say %s: corrected", node.host,
                        (node.vcpus_used, node.memory_mb_used, node.local_gb_used), truth)
            ComputeNode.objects.filter(pk=node_id).update(
                vcpus_used=truth[0], memory_mb_used=truth[1], local_gb_used=truth[2])
            corrected += 1
    return corrected


def _drifted_node_ids() -> list[int]:
    """The nodes whose counters differ from the sum of their allocations, in one query (the
    reconciler runs every 15 s, and three queries per node cost an idle conductor more than any
    other part of its pass, growing with the hosts). Read without locks, in one statement's
    snapshot: a node caught mid-claim may be listed and is then found right under its lock; a
    drift that begins later is found by the next pass."""
    return list(
        ComputeNode.objects.annotate(
            claimed_vcpus=Coalesce(Sum("allocations__vcpus"), 0),
            claimed_memory_mb=Coalesce(Sum("allocations__memory_mb"), 0),
            claimed_disk_gb=Coalesce(Sum("allocations__disk_gb"), 0),
        ).filter(
            ~Q(vcpus_used=F("claimed_vcpus")) | ~Q(memory_mb_used=F("claimed_memory_mb"))
            | ~Q(local_gb_used=F("claimed_disk_gb"))
        ).values_list("pk", flat=True)
    )
