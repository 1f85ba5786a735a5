"""Placing one instance: filter the hosts, weigh the survivors, claim the best one that still fits."""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction
from django.utils import timezone

from cloud import events, rpc
from cloud.compute import action_records, boot_metrics, claims, states
from cloud.compute.models import Instance, InstanceFault, ServerGroupMember
from cloud.compute.raw_rows import raw_models
from cloud.compute.spawn import build_spawn_request, image_join, keep_joined_image

from . import batch, decision_metrics
from .filters import HostFilter, run_filters
from .host_state import HostState, RequestSpec, load_host_states, request_spec_for
from .loader import load_filters, load_weighers
from .prefilter import load_candidates
from .weighers import order_hosts

log = logging.getLogger(__name__)

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


# The instance with its group membership and its image, so request_spec_for, the claim and the
# spawn request need no query for a server in no group, nor for its image's properties and
# download figures, if it still waits to be scheduled (cloud/compute/spawn.py: image_join).
# Written out: the ORM compiled this 55-column join anew for every decision, at more CPU than
# running it (about 1 ms against 0.2). The waiting is checked in the query: most schedule tasks
# find their instance placed already by another task's batch (batch.py), and building the row
# into a model only to drop it cost them more CPU than the query, CPU the batches running beside
# them waited for.
_IMAGE_COLUMNS, _IMAGE_JOIN = image_join("i")
_READ_INSTANCE = (
    f"SELECT i.*, m.id AS _member_id, m.group_id AS _member_group_id, {_IMAGE_COLUMNS} "
    f"FROM {Instance._meta.db_table} i "
    f"LEFT JOIN {ServerGroupMember._meta.db_table} m ON m.instance_id = i.uuid "
    f"{_IMAGE_JOIN} "
    "WHERE i.uuid = %s AND NOT i.deleted AND i.task_state = %s "
    "AND (i.host IS NULL OR i.host = '')"
)


def _read_instance(instance_uuid: str) -> Instance | None:
    """The instance if it waits to be scheduled (not deleted, in `scheduling`, on no host)."""
    key = Instance._meta.pk.get_db_prep_value(instance_uuid, connection)
    # raw_models, not Instance.objects.raw: most tasks of a batch find no row (their boot was
    # placed with another's), and RawQuerySet read the columns of the result even then.
    found = raw_models(Instance, _READ_INSTANCE, [key, states.SCHEDULING])
    if not found:
        return None
    instance = found[0]
    member_id = getattr(instance, "_member_id", None)
    member = None if member_id is None else ServerGroupMember.from_db(
        connection.alias, ["id", "group_id", "instance_id"],
        [member_id, instance._member_group_id, instance.pk])
    Instance.group_member.related.set_cached_value(instance, member)
    keep_joined_image(instance)
    return instance


def _schedulable(instance_uuid: str) -> Instance | None:
    instance = _read_instance(instance_uuid)
    if (
        instance is None
        or instance.deleted
        or instance.task_state != states.SCHEDULING
        or instance.host
    ):
        return None
    return instance


class _Stop(Exception):
    """The instance changed while it was being scheduled (deleted, placed): leave it alone."""


def schedule_instance(instance_uuid: str, request_id: str, *, wait_for_hosts: bool = True) -> int:
    """Place the instance and send its spawn, or put it in ERROR with a fault saying why not.
    How many instances were placed (the boots waiting alongside it may be placed with it).

    A new server in no group is placed together with the boots that wait alongside it and ask
    for the same (batch.py: one shortlist, one claim statement, one commit for all). The hosts
    tried first are the shortlist (prefilter.py: one query, a few dozen rows, however many hosts
    there are); only when none of them can be claimed are all hosts read, to try the rest and to
    say why none fits.

    When the only hosts that would fit are ones a transient filter removed (they stopped sending
    heartbeats, maybe only because the broker was away), and `wait_for_hosts`, the instance keeps
    waiting in `scheduling`; the reconciler asks again after the scheduling deadline, the last time
    with `wait_for_hosts=False`.

    Idempotent: an instance that is gone, placed already or not waiting to be scheduled is left
    alone, so a redelivered task does nothing.
    """
    started = time.perf_counter()
    instance = _schedulable(instance_uuid)
    if instance is None:
        log.info("instance %s is not waiting to be scheduled; nothing to do", instance_uuid)
        return 0
    spec = request_spec_for(instance)
    filters = load_filters()
    weighers = load_weighers()
    if batch.applies(instance, spec, weighers):
        # With the boots waiting alongside it, in one transaction (batch.py).
        placed = batch.place(instance, spec, request_id, filters, weighers, since=started)
        if placed is None:
            log.info("instance %s is no longer waiting to be scheduled; nothing to do",
                     instance_uuid)
            return 0
        if placed.leader:
            return placed.count
        alongside = placed.count
    else:
        alongside = 0
    read_at = timezone.now()
    lost_races: list[str] = []
    try:
        short = run_filters(filters, load_candidates(filters, weighers, spec, read_at), spec)
        if _claim_first(instance, request_id, order_hosts(weighers, short.passed, spec),
                        lost_races):
            return alongside + 1
        # Nothing on the shortlist could be claimed: look at every host, to try the others and
        # to say why none fits.
        states_now = load_host_states(read_at)
        result = run_filters(filters, states_now, spec)
        tried = set(lost_races)
        rest = [h for h in order_hosts(weighers, result.passed, spec) if h.host not in tried]
        if _claim_first(instance, request_id, rest, lost_races):
            return alongside + 1
    except _Stop:
        log.info("instance %s changed while scheduling; stopping", instance_uuid)
        return alongside
    if wait_for_hosts and not lost_races and _silent_hosts_would_fit(filters, states_now, spec):
        log.warning("instance %s waits: the hosts that would fit are not responding", instance_uuid)
        action_records.record_event(
            instance_uuid, action_records.EVENT_SCHEDULE, action_records.SUCCESS,
            details="The hosts that would fit are not responding; waiting for them.\n"
            + result.describe(),
        )
        decision_metrics.waiting(result)
        return alongside
    decision_metrics.no_valid_host(result, lost_races)
    _no_valid_host(
        instance_uuid, _summary(result.counts(), lost_races), _details(result.describe(), lost_races)
    )
    return alongside


def _claim_first(instance: Instance, request_id: str, hosts: list[HostState],
                 lost_races: list[str]) -> bool:
    """Claim the first of `hosts` that still has room and send the spawn there; True once done.
    Each host whose claim was refused is added to `lost_races`; _Stop when the instance changed.

    A host another scheduler is claiming on at this very moment is passed over at first (waiting
    for that claim's commit would queue every scheduler behind the same best host) and tried
    again, waiting this time, only when no other host could be claimed."""
    busy: list[HostState] = []
    for host in hosts:
        placed = _claim_on(instance, request_id, host, wait=False)
        if placed is None:
            busy.append(host)
        elif placed:
            return True
        else:
            lost_races.append(host.host)
    for host in busy:
        if _claim_on(instance, request_id, host, wait=True):
            return True
        lost_races.append(host.host)
    return False


def _claim_on(instance: Instance, request_id: str, host: HostState, *,
              wait: bool) -> bool | None:
    """True: claimed on `host` and the spawn sent. False: refused (no room left, or the group's
    policy). None: another claim holds the host and `wait` is False. _Stop when the instance
    changed."""
    instance_uuid = str(instance.uuid)
    with transaction.atomic():
        take = claims.claim if wait else claims.claim_unless_busy
        placed = take(instance, host=host.host, node=host.node, node_id=host.node_id)
        if placed is None:
            return None
        if placed:
            action_records.record_event(
                instance_uuid, action_records.EVENT_SCHEDULE, action_records.SUCCESS,
                host=host.host
            )
            rpc.spawn(host.host, build_spawn_request(instance, request_id, host.host))
            log.info("instance %s claimed on %s", instance_uuid, host.host)
            decision_metrics.placed()
            return True
    # A refused claim means another request took the room, or this instance changed under us.
    if _schedulable(instance_uuid) is None:
        raise _Stop
    return False


def _silent_hosts_would_fit(
    filters: list[HostFilter], hosts: list[HostState], spec: RequestSpec
) -> bool:
    """Whether some host passes every filter but the transient ones (ComputeAliveFilter)."""
    lasting = [f for f in filters if not getattr(f, "transient", False)]
    return len(lasting) < len(filters) and bool(run_filters(lasting, hosts, spec).passed)


def _summary(counts: str, lost_races: list[str]) -> str:
    # The fault message every member of the project sees (details are for admins): why, in
    # counts, within the 255 characters Nova gives a fault message.
    if lost_races:
        counts += f"; {len(lost_races)} claimed by other requests first"
    return f"{NO_VALID_HOST} ({counts})"[:255]


def _details(filter_summary: str, lost_races: list[str]) -> str:
    if not lost_races:
        return filter_summary
    return (
        f"{filter_summary}\n{len(lost_races)} remaining host(s) were claimed by other requests "
        f"first ({', '.join(lost_races)})."
    )


def _no_valid_host(instance_uuid: str, message: str, details: str) -> None:
    log.warning("no valid host for instance %s: %s", instance_uuid, details.replace("\n", " "))
    with transaction.atomic():
        waiting = Instance.objects.filter(
            uuid=instance_uuid, deleted=False, task_state=states.SCHEDULING, host__isnull=True
        )
        # An offloaded server being unshelved stays shelved (its disk is safe in its image), as
        # in Nova; a new one fails.
        unshelving = waiting.filter(vm_state=states.SHELVED_OFFLOADED).update(task_state=None)
        failed = unshelving or waiting.update(vm_state=states.ERROR, task_state=None)
        if failed != 1:
            return
        if not unshelving:
            boot_metrics.ended(boot_metrics.NO_VALID_HOST)
        InstanceFault.objects.create(
            instance_id=instance_uuid, code=500, message=message, details=details
        )
        events.instance_changed(instance_uuid)
        action_records.record_event(
            instance_uuid,
            action_records.EVENT_SCHEDULE,
            action_records.ERROR,
            details=details,
            finish_action=True,
        )
