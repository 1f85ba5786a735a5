"""Nothing stays stuck: every task state has a deadline, and an instance past it is re-driven.

Messages get lost: a worker is killed holding one, a broker restarts empty, a host dies. Whatever
the cause, the database says which instances are waiting for something, and since when (the row's
`updated_at`). Beat runs `reconcile()` every KUMO_RECONCILE_INTERVAL seconds through the
conductor; for each instance whose task state is older than its deadline (KUMO_TASK_DEADLINES) it
does one of three things, each idempotent and recorded as an action event the user can read:

    ask the host   its latest report proves the work was done (the domain runs, the guest is in the
                   power state the operation leads to): finish it as the lost report would have
    send again     the host is up but shows no sign of it: the same message once more, at most
                   KUMO_MAX_REDRIVES times, a deadline apart
    give up        the host is down, or the re-sends ran out: fail the task with a fault (a build
                   is rescheduled or errors, a delete completes locally as Nova's does, an
                   operation returns to the state it started from)

Every sweep also releases claims whose instance is deleted and corrects node counters that
drifted from their claims. Domains that run without a live instance of their host are destroyed
when the host reports them (host_reports.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cloud import events, rpc
from cloud.compute import (
    action_records,
    claims,
    host_drains,
    hosts,
    migration_records,
    shelving,
    states,
)
from cloud.compute.models import ComputeNode, Instance, InstanceFault
from cloud.compute.operations import REGISTRY, Operation
from cloud.compute.servers import complete_delete
from cloud.compute.spawn import build_spawn_request
from compute_agent import messages as msg

from . import instance_events, migration_recovery, operation_events

log = logging.getLogger(__name__)

# Operations whose success the host's report proves: the guest is in the power state they lead to.
# (A rebuild, resize or snapshot leaves no such trace, so those are failed rather than guessed.)
_POWER_PROVES = {
    states.ACTIVE: {msg.POWER_RUNNING},
    states.STOPPED: {msg.POWER_SHUTDOWN, msg.POWER_CRASHED},
    states.PAUSED: {msg.POWER_PAUSED},
    states.SUSPENDED: {msg.POWER_SHUTDOWN, msg.POWER_SUSPENDED},
}
_POWER_TASKS = {msg.TASK_START, msg.TASK_STOP, msg.TASK_PAUSE, msg.TASK_UNPAUSE, msg.TASK_SUSPEND,
                msg.TASK_RESUME, msg.TASK_REBOOT}
_OPERATION_OF_TASK = {op.task_state: op for op in REGISTRY.values()
                      if op.task_state and op.host_task and op.name != "delete"}


def deadline_of(task_state: str) -> float:
    deadlines = settings.KUMO_TASK_DEADLINES
    return float(deadlines.get(task_state, deadlines["default"]))


def reconcile() -> dict[str, int]:
    """One sweep over everything that waits; what it did, counted by kind."""
    now = timezone.now()
    shortest = min(float(v) for v in settings.KUMO_TASK_DEADLINES.values())
    waiting = Instance.objects.filter(
        deleted=False, task_state__isnull=False,
        updated_at__lt=now - timedelta(seconds=shortest),
    )
    done: Counter[str] = Counter()
    for instance in waiting:
        if instance.updated_at >= now - timedelta(seconds=deadline_of(instance.task_state)):
            continue
        outcome = _redrive(instance)
        if outcome:
            done[outcome] += 1
    # A drain's kicks go with its moves' events; one per pass as well carries on a drain whose
    # kick was lost, or that waits for a guest busy with something else.
    for drain_uuid in host_drains.running().values_list("uuid", flat=True):
        rpc.kick_drain(str(drain_uuid))
    if offloaded := shelving.offload_due():
        done["shelved servers offloaded"] = offloaded
    if leaked := claims.release_leaked():
        done["claims released"] = leaked
    if drifted := claims.correct_usage():
        done["node counters corrected"] = drifted
    if done:
        log.warning("reconciled: %s", dict(done))
    return dict(done)


def _redrive(instance: Instance) -> str:
    host = instance.host
    up = bool(host) and hosts.host_is_up(host)
    if instance.task_state in migration_recovery.MOVE_TASKS:
        move = migration_records.current(instance)
        if move is not None:
            return migration_recovery.recover(instance, move)
    if instance.task_state == states.SCHEDULING:
        return _scheduling(instance)
    if instance.task_state == states.SPAWNING:
        return _spawning(instance, up)
    if instance.task_state == states.DELETING:
        return _deleting(instance, up)
    operation = _OPERATION_OF_TASK.get(instance.task_state)
    if operation is None:
        return ""
    return _operation(instance, operation, up)


def _scheduling(instance: Instance) -> str:
    if _redrives(instance) >= settings.KUMO_MAX_REDRIVES:
        # Even the last try went unanswered (no scheduler took the message): the build ends here
        # with a fault rather than waiting for ever. A scheduler that answers later finds the
        # instance no longer waiting and does nothing.
        return "builds given up" if _scheduling_failed(instance) else ""
    # The last try tells the scheduler to stop waiting for silent hosts and say why it cannot.
    final = _redrives(instance) + 1 >= settings.KUMO_MAX_REDRIVES
    with transaction.atomic():
        if not _touch(instance, "scheduling again" + (" (last try)" if final else "")):
            return ""
        rpc.schedule_instance(str(instance.uuid), _request_id(instance),
                              wait_for_hosts=not final)
    return "schedules resent"


def _scheduling_failed(instance: Instance) -> bool:
    message = "No scheduler answered: the build was not placed in time."
    with transaction.atomic():
        waiting = Instance.objects.filter(pk=instance.pk, deleted=False,
                                          task_state=states.SCHEDULING,
                                          updated_at=instance.updated_at)
        # An offloaded server being unshelved stays shelved (its disk is in its image).
        failed = waiting.filter(vm_state=states.SHELVED_OFFLOADED).update(
            task_state=None, updated_at=timezone.now())
        failed = failed or waiting.update(vm_state=states.ERROR, task_state=None,
                                          updated_at=timezone.now())
        if not failed:
            return False
        InstanceFault.objects.create(instance_id=instance.pk, code=500, message=message,
                                     details=f"{settings.KUMO_MAX_REDRIVES} schedule requests "
                                             "went unanswered")
        action_records.record_event(str(instance.uuid), action_records.EVENT_REDRIVE,
                                    action_records.ERROR, details=message, finish_action=True)
        events.instance_changed(str(instance.uuid))
    log.warning("instance %s: %s", instance.uuid, message)
    return True


def _spawning(instance: Instance, up: bool) -> str:
    host = instance.host or ""
    if up and _reported_power(instance) == msg.POWER_RUNNING:
        _apply(instance, msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING)
        return "builds found running"
    if not up or _redrives(instance) >= settings.KUMO_MAX_REDRIVES:
        why = (f"host {host} stopped responding while building it" if not up
               else f"host {host} did not build it in time")
        _apply(instance, msg.EVENT_SPAWN_FAILED, message=why)
        return "builds given up"
    with transaction.atomic():
        if not _touch(instance, f"asking {host} to build it again"):
            return ""
        rpc.spawn(host, build_spawn_request(instance, _request_id(instance), host))
    return "spawns resent"


def _deleting(instance: Instance, up: bool) -> str:
    host = instance.host
    if host and up and not _report_shows_gone(instance) and (
        _redrives(instance) < settings.KUMO_MAX_REDRIVES
    ):
        with transaction.atomic():
            if not _touch(instance, f"asking {host} to destroy it again"):
                return ""
            rpc.destroy(host, msg.DestroyRequest(request_id=_request_id(instance),
                                                 instance_uuid=str(instance.uuid)))
        return "destroys resent"
    # The host confirmed it is gone, is down, or never answered: finish here, as Nova's local
    # delete does. Should its domain still run, the host's next report has it destroyed.
    details = ("its host reports it gone" if host and up and _report_shows_gone(instance)
               else f"host {host} is not responding; deleted here" if host and not up
               else "deleted here after its host did not answer" if host
               else "it never had a host")
    action_records.record_event(str(instance.uuid), action_records.EVENT_REDRIVE,
                                action_records.SUCCESS, host=host, details=details)
    complete_delete(str(instance.uuid))
    return "deletes completed"


def _operation(instance: Instance, operation: Operation, up: bool) -> str:
    host = instance.host or ""
    proof = _POWER_PROVES.get(operation.done_vm_state or "")
    if up and operation.host_task in _POWER_TASKS and proof and _reported_power(instance) in proof:
        assert operation.finished_by is not None
        _apply(instance, operation.finished_by, power_state=_reported_power(instance))
        return "operations found done"
    why = (f"host {host} is not responding" if not up
           else f"host {host} did not finish it in {int(deadline_of(instance.task_state))} s")
    _apply(instance, msg.EVENT_ACTION_FAILED, action=operation.name, message=why,
           power_state=_reported_power(instance) or instance.power_state)
    return "operations failed"


# --- helpers


def _redrives(instance: Instance) -> int:
    return action_records.count_events(str(instance.uuid), action_records.EVENT_REDRIVE)


def _touch(instance: Instance, details: str) -> bool:
    """Record the re-drive and restart the deadline, if the instance is still where it was."""
    moved = Instance.objects.filter(
        pk=instance.pk, task_state=instance.task_state, updated_at=instance.updated_at
    ).update(updated_at=timezone.now())
    if moved:
        action_records.record_event(str(instance.uuid), action_records.EVENT_REDRIVE,
                                    action_records.SUCCESS, host=instance.host, details=details)
        log.warning("instance %s stuck in %s: %s", instance.uuid, instance.task_state, details)
    return bool(moved)


def _request_id(instance: Instance) -> str:
    return f"{operation_events.RECONCILE_REQUEST_PREFIX}{str(instance.uuid)[:8]}"


def _report(instance: Instance) -> ComputeNode | None:
    return ComputeNode.objects.filter(host=instance.host).first() if instance.host else None


def _reported_power(instance: Instance) -> str:
    """The power state the host's latest report gives the instance's domain ("" if none)."""
    node = _report(instance)
    for domain in (node.domains if node else None) or []:
        if domain.get("uuid") == str(instance.uuid):
            return str(domain.get("power_state", ""))
    return ""


def _report_shows_gone(instance: Instance) -> bool:
    """The host reported after the instance last changed, and its domain was not in that report."""
    node = _report(instance)
    return node is not None and node.updated_at > instance.updated_at and not _reported_power(
        instance)


def _apply(instance: Instance, event: str, *, power_state: str = msg.POWER_NOSTATE,
           message: str = "", action: str = "") -> None:
    """Apply what the host would have reported, through the conductor's own handlers."""
    action_records.record_event(str(instance.uuid), action_records.EVENT_REDRIVE,
                                action_records.SUCCESS, host=instance.host,
                                details=f"treated as {event}: {message or 'per the host'}")
    instance_events.apply_instance_event(msg.InstanceEvent(
        request_id=_request_id(instance), instance_uuid=str(instance.uuid),
        host=instance.host or "", event=event, power_state=power_state, message=message,
        action=action,
    ))
