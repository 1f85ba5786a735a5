"""Moving a server between states: the one lock check, the one compare-and-swap of an operation's
task state, and writes under a row lock for the operations that have no state rule.

Every state change of an operation is one conditional UPDATE whose WHERE is the operation's state
rule (operations.py): it changes exactly one row or the operation answers 409, so two requests
racing for one server cannot both start.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from cloud import errors, events
from cloud.identity.context import RequestContext

from .action_records import record_action
from .hosts import host_is_up
from .models import Instance
from .operations import LOCKED_IGNORED, LOCKED_ONLY_LOCKED, Operation


def ensure_unlocked(ctx: RequestContext, instance: Instance) -> None:
    """A locked server refuses changes from anyone but an admin."""
    if instance.locked and not ctx.is_admin:
        raise errors.Conflict(f"Instance {instance.uuid} is locked")


def ensure_host_up(operation: Operation, instance: Instance) -> None:
    """An operation its host must carry out is refused (409) while that host is not responding,
    instead of waiting for a host that may never answer."""
    if instance.host and not host_is_up(instance.host):
        raise errors.Conflict(
            f"Cannot '{operation.shown_name}' instance {instance.uuid}: its host "
            f"{instance.host} is not responding."
        )


def refusal(operation: Operation, instance: Instance) -> errors.Conflict:
    """The 409 of an operation the server's current state forbids, in Nova's words."""
    current = Instance.objects.filter(pk=instance.pk).first() or instance
    where = f"vm_state {current.vm_state}"
    if current.task_state:
        where += f", task_state {current.task_state}"
    return errors.Conflict(
        f"Cannot '{operation.shown_name}' instance {instance.uuid} while it is in {where}"
    )


def move(instance: Instance, operation: Operation, **changes: Any) -> bool:
    """The compare-and-swap: put the server into the operation's task state (and `changes`) if,
    at this very moment, its state rule allows it; True when the row moved."""
    task_filter = Q(task_state__in=[t for t in operation.task_states if t is not None])
    if None in operation.task_states:
        task_filter |= Q(task_state__isnull=True)
    rows = Instance.objects.filter(task_filter, pk=instance.pk, deleted=False)
    if operation.vm_states is not None:
        rows = rows.filter(vm_state__in=operation.vm_states)
    if operation.requires_host:
        rows = rows.filter(host__isnull=False)
    moved = rows.update(task_state=operation.task_state, updated_at=timezone.now(), **changes)
    return moved == 1


def begin(ctx: RequestContext, instance: Instance, operation: Operation, **changes: Any) -> Instance:
    """Start `operation`: refuse a locked server, move it (409 when its state forbids), record the
    InstanceAction and announce the change. Call inside the transaction that sends the host its
    request, so the request leaves only if this commits. Returns the row as it is now."""
    if operation.locked not in (LOCKED_IGNORED, LOCKED_ONLY_LOCKED):
        ensure_unlocked(ctx, instance)
    if operation.requires_host:
        ensure_host_up(operation, instance)
    if not move(instance, operation, **changes):
        raise refusal(operation, instance)
    if operation.record:
        record_action(ctx, instance, operation.record)
    events.instance_changed(instance.pk)
    return Instance.objects.get(pk=instance.pk)


def locked_row(instance: Instance) -> Instance:
    """The server's row, locked until the caller's transaction ends (404 once deleted)."""
    row = Instance.objects.select_for_update(no_key=True).filter(pk=instance.pk, deleted=False).first()
    if row is None:
        raise errors.NotFound(f"Instance {instance.uuid} could not be found.")
    return row


def write(row: Instance, **changes: Any) -> None:
    """Change a row already locked by `locked_row`, and announce it."""
    Instance.objects.filter(pk=row.pk).update(**changes, updated_at=timezone.now())
    events.instance_changed(row.pk)
