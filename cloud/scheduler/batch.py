"""Deciding the boots that wait alongside one: several placements, one transaction, one commit.

A schedule task for a new server (the leader) also takes up to KUMO_SCHEDULER_BATCH − 1 other
boots waiting to be scheduled that ask for exactly the same (same flavor sizes, image and zone; no server
group, requested destination or hosts tried before: their specs are the leader's but for the id),
oldest first, under row locks (SKIP LOCKED: a boot another scheduler holds is its business). It
reads one shortlist for all of them (prefilter.py, SHORTLIST_SIZE plus one host per request, so
each request's best host is on it however the others' claims reorder the hosts), runs the
filters, and gives each request in turn the best host by the weighers (among the nodes no
other batch of this process is claiming while any is left: _NodesInFlight), counting each choice
against that host's room in memory before the next. Then one statement claims them all
(claims.claim_many: all or nothing per request, each node's counters raised once for its share
where the whole share still fits, nodes other schedulers hold skipped); requests whose node was
busy or full try the remaining hosts, and one INSERT records their events and one their spawn
messages; one commit.

A spawn message carries the trace context of the task that decided it (the others' own tasks'
contexts are in their messages, still queued). What the batch could not place is left as it was: a taken boot is placed by its own task (which
finds it waiting), and the leader goes on through the one-request path (manager.py), which tries
the remaining hosts, reads every host if need be and says why none fits. A boot the batch placed
finds, when its own task runs, nothing to do (a task is idempotent); its decision is counted here.
The database stays the arbiter: every claim re-checks the room in SQL under the node's row lock,
so concurrent schedulers (batches or not) never overcommit a node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cloud import rpc
from cloud.compute import action_records, claims, states
from cloud.compute.models import (
    BlockDeviceMapping,
    Instance,
    InstanceAction,
    ServerGroupMember,
)
from cloud.compute.raw_rows import raw_models
from cloud.compute.spawn import build_spawn_request, share_joined_image
from cloud.network.models import Port

from . import decision_metrics, prefilter
from .filters import HostFilter, run_filters
from .host_state import HostState, RequestSpec
from .prefilter import load_candidates, sql_order
from .weighers import HostWeigher, best_host

log = logging.getLogger(__name__)

# How many boots one decision may place at most; 1: one at a time (manager.py alone). Every boot
# of a batch waits for the whole batch: 8 kept the p99 of a decision at 35-46 ms at 444-646
# decisions/s (1,000 hosts, the Procfile's 2 threads), where 16 gave 777/s at p99 60 ms; 6 was
# no better on a slower machine (300-314/s at p99 45-61 ms, against 8's 370-450/s at 45-54 ms).
DEFAULT_BATCH = 8
# How long a batch should take, from its task's start to its end (KUMO_SCHEDULER_BATCH_BUDGET_MS;
# 0, the default: always up to KUMO_SCHEDULER_BATCH). Every boot of a batch waits for the whole
# batch, so its size is what a decision's latency is made of: each boot adds its spawn message,
# its publish and its weighing (about a millisecond and a half of Python), more when other
# threads hold the GIL or PostgreSQL the CPU. With a budget, a batch takes as many boots as the
# time per boot the batches of this process measured lately fits in it. Off by default: on the
# 2-CPU development machine a 20 ms budget gave batches of about 4 and p99 58-96 ms at 190-240
# decisions/s, against 350/s and p99 122 ms for batches of 16 (bench/README.md, Scheduler).
DEFAULT_BUDGET_MS = 0.0
# The time per boot assumed before any batch was timed: what batches of MIN_TAKE measured on that
# machine (a cold process's first batches must not be its longest).
_FIRST_GUESS = 0.005
# The fewest boots a batch takes whatever its time, when that many wait: a batch's queries and
# commit take their time however few boots share them, and on a busy machine they alone may pass
# the budget; smaller batches would then only cut the decisions per second, not the latency.
MIN_TAKE = 4
# How much of the estimate the latest batch makes (an exponentially weighted mean).
_WEIGHT = 0.2
# Rounds of claims within one batch, each trying, for the requests whose node was busy or full,
# the best hosts left.
_ROUNDS = 3

_I, _MEMBER = Instance._meta.db_table, ServerGroupMember._meta.db_table
_ACTION, _PORT, _BDM = (InstanceAction._meta.db_table, Port._meta.db_table,
                        BlockDeviceMapping._meta.db_table)
# The state is written into the statement rather than passed: the statement is prepared on the
# server (cloud/settings.py), and a plan made for any value of a parameter could not use the
# partial index of the waiting boots (Instance.Meta, instance_waiting_idx), whose condition names
# the state.
assert states.SCHEDULING.isidentifier()  # nothing to escape between the quotes
_WAITING = f"NOT i.deleted AND i.task_state = '{states.SCHEDULING}' AND i.host IS NULL"
# The leader (waiting for its lock, then re-checking it still waits) and the boots like it that
# no other scheduler holds, each with its latest action's request id and whether it has ports or
# volumes (what its spawn message needs). Written out, as manager.py's read of one instance. It does
# not look for a claim of each boot: a boot waiting to be scheduled has none (a claim moves it to
# its host in the same statement, a reschedule releases it), and claims.claim_many, which checks
# the few boots taken, refuses one that has. Asked here of every waiting boot, under a plan
# PostgreSQL prepared while the claims table was nearly empty, it scanned every claim for every
# waiting boot: 30 ms a batch at 2,000 claims, and decisions slowed with the backlog (2,000
# waiting: 74-94/s; 3,000: 103/s).
_TAKE = f"""
WITH leader AS MATERIALIZED (
    SELECT i.* FROM {_I} i WHERE i.uuid = %(leader)s AND {_WAITING} FOR NO KEY UPDATE
), alike AS MATERIALIZED (
    SELECT i.* FROM {_I} i
    WHERE EXISTS (SELECT 1 FROM leader) AND {_WAITING} AND i.uuid <> %(leader)s
        AND i.vm_state = %(building)s AND i.vcpus = %(vcpus)s AND i.memory_mb = %(memory_mb)s
        AND i.root_gb = %(root_gb)s AND i.ephemeral_gb = %(ephemeral_gb)s
        AND i.availability_zone IS NOT DISTINCT FROM %(zone)s
        AND i.image_ref IS NOT DISTINCT FROM %(image)s
        AND i.requested_host IS NULL AND i.requested_node IS NULL AND NOT i.force_destination
        AND i.tried_hosts = '[]'::jsonb
        AND NOT EXISTS (SELECT 1 FROM {_MEMBER} m WHERE m.instance_id = i.uuid)
    ORDER BY i.created_at LIMIT %(more)s
    FOR NO KEY UPDATE SKIP LOCKED
)
SELECT b.*,
    (SELECT request_id FROM {_ACTION} a WHERE a.instance_id = b.uuid
     ORDER BY a.start_time DESC, a.id DESC LIMIT 1) AS _request_id,
    EXISTS (SELECT 1 FROM {_PORT} p WHERE p.device_id = b.uuid::text) AS _has_ports,
    EXISTS (SELECT 1 FROM {_BDM} d WHERE d.instance_id = b.uuid) AS _has_volumes
FROM (SELECT *, 0 AS _leader FROM leader UNION ALL SELECT *, 1 FROM alike) b
ORDER BY b._leader, b.created_at
"""


def batch_size() -> int:
    """The most boots one batch may take (KUMO_SCHEDULER_BATCH)."""
    return max(1, int(getattr(settings, "KUMO_SCHEDULER_BATCH", DEFAULT_BATCH)))


class _TimePerBoot:
    """Seconds a batch of this process takes per boot it took, from its task's start: an
    exponentially weighted mean of the batches timed. A batch's fixed part (its queries, its
    commit) is shared by its boots, so the sizes it gives settle where a batch takes the budget:
    a batch of n that took t gives t / n; the next takes budget / (t / n)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = _FIRST_GUESS

    def note(self, seconds: float, boots: int) -> None:
        with self._lock:
            self.seconds += _WEIGHT * (seconds / max(1, boots) - self.seconds)

    def reset(self) -> None:
        with self._lock:
            self.seconds = _FIRST_GUESS


time_per_boot = _TimePerBoot()


class _NodesInFlight:
    """The nodes this process's batches have chosen and not yet committed or undone their claims
    on. Two threads' batches read their shortlists at about the same time, so they weigh the same
    hosts alike and choose the same best ones: the claim of one then found the other's nodes held
    (SKIP LOCKED) and went round again, filters, choice and claim, for about a quarter of the
    batches at 1,000 hosts (2 threads). A batch therefore chooses among the nodes no other batch
    of this process holds first, and takes a held one only when no other is left for a request,
    so concurrent batches spread over different hosts, as Nova's host_subset_size spreads its
    schedulers. Only a hint: schedulers in other processes do not see it, and the claim's
    statement stays the arbiter of every node's room."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[int] = Counter()

    def choose(self, mine: set[int],
               pick: Callable[[frozenset[int]], dict[str, HostState]]) -> dict[str, HostState]:
        """`pick(avoid)` with the nodes other batches hold as `avoid`, its chosen nodes counted
        as held (and added to `mine`) before another batch chooses."""
        with self._lock:
            chosen = pick(frozenset(self._held.keys() - mine))
            new = {host.node_id for host in chosen.values()} - mine
            self._held.update(new)
            mine.update(new)
        return chosen

    def release(self, mine: set[int]) -> None:
        """The batch that held `mine` is over."""
        if not mine:
            return
        with self._lock:
            self._held.subtract(mine)
            for node_id in mine:
                if self._held[node_id] <= 0:
                    del self._held[node_id]

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)


in_flight = _NodesInFlight()


def take_size() -> int:
    """How many boots the next batch takes (its leader included): as many as fit in the time
    budget by the time per boot measured, at least MIN_TAKE, at most batch_size()."""
    most = batch_size()
    budget = float(getattr(settings, "KUMO_SCHEDULER_BATCH_BUDGET_MS", DEFAULT_BUDGET_MS)) / 1000
    if budget <= 0:
        return most
    return max(min(most, MIN_TAKE), min(most, int(budget / time_per_boot.seconds)))


def applies(instance: Instance, spec: RequestSpec, weighers: list[HostWeigher]) -> bool:
    """Whether the leader's request can be decided with others: a new server in no group, with
    no requested destination, on PostgreSQL (whose statements lock and claim several rows at
    once), with weighers whose order the shortlist query gives."""
    return (
        batch_size() > 1
        and connection.vendor == "postgresql"
        and instance.vm_state == states.BUILDING
        and not instance.tried_hosts
        and spec.group_policy is None
        and claims.outside_any_group(instance)
        and not (spec.requested_host or spec.requested_node or spec.force_destination)
        and sql_order(weighers, spec) is not None
    )


@dataclass(frozen=True)
class Placed:
    """What one batch placed: whether the leader, and how many in all (the leader included)."""

    leader: bool
    count: int


def place(leader: Instance, spec: RequestSpec, request_id: str, filters: list[HostFilter],
          weighers: list[HostWeigher], *, since: float | None = None) -> Placed | None:
    """Place the leader and the boots waiting like it, all that can be, in one transaction.
    None: the leader no longer waits (another scheduler placed it, or it was deleted); with
    `leader` False it still waits, and the caller goes on alone. `since`: when the leader's task
    started (time.perf_counter()), which the batch's time per boot counts from."""
    started = time.perf_counter()
    since = started if since is None else since
    mine: set[int] = set()
    try:
        return _place(leader, spec, request_id, filters, weighers, started, since, mine)
    finally:
        # Its claims are committed or undone by now: another batch may choose its nodes.
        in_flight.release(mine)


def _place(leader: Instance, spec: RequestSpec, request_id: str, filters: list[HostFilter],
           weighers: list[HostWeigher], started: float, since: float,
           mine: set[int]) -> Placed | None:
    with transaction.atomic():
        taken = _take(leader, spec)
        if not taken or taken[0][0].pk != leader.pk:
            return None
        read_at = timezone.now()
        candidates = load_candidates(filters, weighers, spec, read_at,
                                     limit=prefilter.SHORTLIST_SIZE + len(taken))
        hosts = run_filters(filters, candidates, spec).passed
        waiting = {str(instance.pk): (instance, rid, has) for instance, rid, has in taken}
        placed: dict[str, HostState] = {}
        for _ in range(_ROUNDS):
            if not waiting or not hosts:
                break
            chosen = in_flight.choose(
                mine, partial(_choose, filters, weighers, spec, hosts, list(waiting)))
            if not chosen:
                break
            outcomes = claims.claim_many([
                (waiting[uuid][0], host.host, host.node, host.node_id)
                for uuid, host in chosen.items()])
            # A node that was busy or full for any request of this round is not tried again;
            # those requests try the best hosts left (the instances' own locks are ours, so a
            # refusal cannot mean the instance changed).
            lost = {chosen[uuid].node_id for uuid, won in outcomes.items() if not won}
            for uuid, won in outcomes.items():
                if won:
                    placed[uuid] = chosen[uuid]
                    _use(chosen[uuid], spec)
                    del waiting[uuid]
            hosts = [h for h in hosts if h.node_id not in lost]
            hosts = run_filters(filters, hosts, spec).passed
        if not placed:
            time_per_boot.note(time.perf_counter() - since, len(taken))
            return Placed(leader=False, count=0)
        action_records.record_successes(
            action_records.EVENT_SCHEDULE, {uuid: h.host for uuid, h in placed.items()})
        # The leader's request id is its task's; the others' their latest action's.
        by_uuid = {str(instance.pk): (instance, rid, has) for instance, rid, has in taken}
        by_uuid[str(leader.pk)] = (taken[0][0], request_id, taken[0][2])
        rpc.spawn_many([
            (host.host, build_spawn_request(by_uuid[uuid][0], by_uuid[uuid][1] or request_id,
                                            host.host, has_ports_and_volumes=by_uuid[uuid][2]))
            for uuid, host in placed.items()])
    leader_placed = str(leader.pk) in placed
    others = len(placed) - leader_placed
    if log.isEnabledFor(logging.INFO):
        for uuid, host in placed.items():
            log.info("instance %s claimed on %s%s", uuid, host.host,
                     "" if uuid == str(leader.pk) else f" (decided with {leader.pk})")
    if leader_placed:
        decision_metrics.placed()
    decision_metrics.placed_alongside(others, time.perf_counter() - started)
    # Counted once its spawn messages are published (after the commit): every boot of the batch
    # waited for that too.
    time_per_boot.note(time.perf_counter() - since, len(taken))
    return Placed(leader=leader_placed, count=len(placed))


def _take(leader: Instance, spec: RequestSpec) -> list[tuple[Instance, str | None, tuple[bool, bool]]]:
    """The leader (first, if it still waits) and the boots taken with it, each with its request
    id and whether it has ports and volumes; all locked until the transaction ends."""
    params = {
        "leader": leader.pk, "building": states.BUILDING,
        "vcpus": spec.vcpus, "memory_mb": spec.memory_mb, "root_gb": spec.root_gb,
        "ephemeral_gb": spec.ephemeral_gb, "zone": spec.availability_zone,
        # The same image too: filters read its properties (a container image goes to container
        # hosts only, ImagePropertiesFilter), so boots of two images are decided apart.
        "image": leader.image_ref,
        "more": take_size() - 1,
    }
    taken = []
    for instance in raw_models(Instance, _TAKE, params):
        # None of them is in a group (the leader was checked; the others by the query).
        Instance.group_member.related.set_cached_value(instance, None)
        # And they boot the leader's image (the query says so): the one it was read with.
        share_joined_image(leader, instance)
        taken.append((instance, instance._request_id,
                      (bool(instance._has_ports), bool(instance._has_volumes))))
    return taken


def _choose(filters: list[HostFilter], weighers: list[HostWeigher], spec: RequestSpec,
            hosts: list[HostState], uuids: list[str],
            avoid: frozenset[int] = frozenset()) -> dict[str, HostState]:
    """The best host for each request in turn, each choice counted against the host's room
    before the next (on copies: a claim that does not land must not leave its mark); among the
    nodes not in `avoid` while any is left."""
    room = [replace(h) for h in hosts]
    free = [h for h in room if h.node_id not in avoid]
    by_node = {h.node_id: h for h in hosts}
    chosen: dict[str, HostState] = {}
    for uuid in uuids:
        own = replace(spec, instance_uuid=uuid)
        best = best_host(weighers, free or room, own)
        if best is None:
            break
        chosen[uuid] = by_node[best.node_id]
        _use(best, own)
        if not run_filters(filters, [best], own).passed:
            room = [h for h in room if h is not best]
            free = [h for h in free if h is not best]
    return chosen


def _use(host: HostState, spec: RequestSpec) -> None:
    # What the claim's UPDATE adds to the node's counters.
    host.vcpus_used += spec.vcpus
    host.memory_mb_used += spec.memory_mb
    host.local_gb_used += spec.disk_gb
