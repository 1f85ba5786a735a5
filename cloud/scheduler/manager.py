"""Placing one instance: filter the hosts, weigh the survivors, claim the best one that still fits."""

from __future__ import annotations

import logging

from django.db import transaction

from cloud import events, rpc
from cloud.compute import action_records, claims, states
from cloud.compute.models import Instance, InstanceFault
from cloud.compute.spawn import build_spawn_request

from .filters import HostFilter, run_filters
from .host_state import HostState, RequestSpec, load_host_states, request_spec_for
from .loader import load_filters, load_weighers
from .weighers import order_hosts

log = logging.getLogger(__name__)

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


def _schedulable(instance_uuid: str) -> Instance | None:
    instance = Instance.objects.filter(uuid=instance_uuid).first()
    if (
        instance is None
        or instance.deleted
        or instance.task_state != states.SCHEDULING
        or instance.host
    ):
        return None
    return instance


def schedule_instance(instance_uuid: str, request_id: str, *, wait_for_hosts: bool = True) -> None:
    """Place the instance and send its spawn, or put it in ERROR with a fault saying why not.

    When the only hosts that would fit are ones a transient filter removed (they stopped sending
    heartbeats, maybe only because the broker was away), and `wait_for_hosts`, the instance keeps
    waiting in `scheduling`; the reconciler asks again after the scheduling deadline, the last time
    with `wait_for_hosts=False`.

    Idempotent: an instance that is gone, placed already or not waiting to be scheduled is left
    alone, so a redelivered task does nothing.
    """
    instance = _schedulable(instance_uuid)
    if instance is None:
        log.info("instance %s is not waiting to be scheduled; nothing to do", instance_uuid)
        return
    spec = request_spec_for(instance)
    filters = load_filters()
    states_now = load_host_states()
    result = run_filters(filters, states_now, spec)
    lost_races: list[str] = []
    for host in order_hosts(load_weighers(), result.passed, spec):
        with transaction.atomic():
            if claims.claim(instance, host=host.host, node=host.node, node_id=host.node_id):
                action_records.record_event(
                    instance_uuid, action_records.EVENT_SCHEDULE, action_records.SUCCESS, host=host.host
                )
                rpc.spawn(host.host, build_spawn_request(instance, request_id, host.host))
                log.info("instance %s claimed on %s", instance_uuid, host.host)
                return
        # A refused claim means another request took the room, or this instance changed under us.
        if _schedulable(instance_uuid) is None:
            log.info("instance %s changed while scheduling; stopping", instance_uuid)
            return
        lost_races.append(host.host)
    if wait_for_hosts and not lost_races and _silent_hosts_would_fit(filters, states_now, spec):
        log.warning("instance %s waits: the hosts that would fit are not responding", instance_uuid)
        action_records.record_event(
            instance_uuid, action_records.EVENT_SCHEDULE, action_records.SUCCESS,
            details="The hosts that would fit are not responding; waiting for them.\n"
            + result.describe(),
        )
        return
    _no_valid_host(
        instance_uuid, _summary(result.counts(), lost_races), _details(result.describe(), lost_races)
    )


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
        failed = waiting.filter(vm_state=states.SHELVED_OFFLOADED).update(task_state=None)
        failed = failed or waiting.update(vm_state=states.ERROR, task_state=None)
        if failed != 1:
            return
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
