"""Locking a server (Nova's lock/unlock): a locked server refuses every change but from an admin
(transitions.ensure_unlocked), and only an admin may lift an admin's lock.

Neither has a state rule, so both write under a row lock (transitions.locked_row) instead of
moving a task state.
"""

from __future__ import annotations

from django.db import transaction

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.identity.models import RoleAssignment

from .action_records import record_action
from .models import Instance
from .operations import runs
from .transitions import locked_row, write


@runs("lock")
def lock_server(ctx: RequestContext, instance: Instance, reason: str | None = None) -> None:
    """Lock the server, with the reason the user gave (2.73) shown as its locked_reason."""
    with transaction.atomic():
        row = locked_row(instance)
        if row.locked and not ctx.is_admin:
            # As in Nova: a member's second lock is a no-op, so an admin's lock stays the admin's.
            return
        write(row, locked=True, locked_reason=reason)
        record_action(ctx, row, "lock")


@runs("unlock")
def unlock_server(ctx: RequestContext, instance: Instance) -> None:
    """Members may unlock their project's servers, except one an admin locked."""
    with transaction.atomic():
        row = locked_row(instance)
        if row.locked and not ctx.is_admin and locked_by_admin(row):
            raise errors.Forbidden(
                f"Instance {row.uuid} was locked by an administrator; only an administrator "
                "can unlock it."
            )
        write(row, locked=False, locked_reason=None)
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
