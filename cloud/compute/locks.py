"""What POST /servers/{id}/action does, one function per action, each recording an InstanceAction.

Adding an action: a function here that refuses a locked server (`ensure_unlocked`), checks its rule
in `states.TRANSITIONS` if it may start only from some states, changes the row with a conditional
update, and calls `record_action`; then a handler and a table row in cloud/api/compute/server_actions.py.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cloud import errors, events
from cloud.identity.context import RequestContext
from cloud.identity.models import RoleAssignment

from . import states
from .action_records import record_action
from .models import Instance

# What os-resetState may set, by the name the API takes.
RESET_STATES = {"active": states.ACTIVE, "error": states.ERROR}


def lock_server(ctx: RequestContext, instance: Instance) -> None:
    with transaction.atomic():
        row = _row_for_update(instance)
        if row.locked and not ctx.is_admin:
            # As in Nova: a member's second lock is a no-op, so an admin's lock stays the admin's.
            return
        _write(row, locked=True, locked_reason=None)
        record_action(ctx, row, "lock")


def unlock_server(ctx: RequestContext, instance: Instance) -> None:
    """Members may unlock their project's servers, except one an admin locked."""
    with transaction.atomic():
        row = _row_for_update(instance)
        if row.locked and not ctx.is_admin and locked_by_admin(row):
            raise errors.Forbidden(
                f"Instance {row.uuid} was locked by an administrator; only an administrator "
                "can unlock it."
            )
        _write(row, locked=False, locked_reason=None)
        record_action(ctx, row, "unlock")


def locked_by_admin(instance: Instance) -> bool:
    """Whether the user behind the instance's latest lock holds the admin role.

    Instance has no column for who locked it; the "lock" InstanceAction row says who did. The role
    is the one they hold now, not necessarily at lock time.
    """
    lock = instance.actions.filter(action="lock").order_by("-start_time", "-id").first()
    if lock is None:
        return False
    return RoleAssignment.objects.filter(
        user_id=lock.user_id, project_id=lock.project_id, role__name="admin"
    ).exists()


def reset_state(ctx: RequestContext, instance: Instance, state: str) -> None:
    """An admin's repair: set vm_state to active or error and clear any task, from any state."""
    vm_state = RESET_STATES[state]
    with transaction.atomic():
        row = _row_for_update(instance)
        _write(row, vm_state=vm_state, task_state=None)
        record_action(ctx, row, "resetState")


def _row_for_update(instance: Instance) -> Instance:
    row = Instance.objects.select_for_update().filter(pk=instance.pk, deleted=False).first()
    if row is None:
        raise errors.NotFound(f"Instance {instance.uuid} could not be found.")
    return row


def _write(row: Instance, **changes) -> None:
    Instance.objects.filter(pk=row.pk).update(**changes, updated_at=timezone.now())
    events.instance_changed(row.pk)
