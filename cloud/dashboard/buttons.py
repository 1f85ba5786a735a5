"""The operations a person can click: every operation of cloud/compute/operations.py that declares a
dashboard button, offered when both tables the API obeys allow it now, its policy rule
(cloud/identity/policy.py) and its state rule.

The server re-checks both when the form is posted (operations.perform goes through the same
service functions as the API), so a button that was stale by the time it was clicked answers with
the service's own reason (409), and a forged one with 403.
"""

from __future__ import annotations

from typing import Any

from cloud.compute import operations, states
from cloud.compute.models import Instance
from cloud.compute.operations import Operation
from cloud.identity import policy
from cloud.identity.context import RequestContext

BUTTONS: dict[str, Operation] = {
    name: op for name, op in operations.REGISTRY.items() if op.button is not None
}


def state_allows(operation: Operation, instance: Instance, *, host_silent: bool = False) -> bool:
    if instance.deleted or instance.task_state == states.DELETING:
        return False
    if operation.requires_host and host_silent:
        return False  # the service would answer 409: its host is not responding
    if operation.locked == operations.LOCKED_ONLY_UNLOCKED:
        return not instance.locked
    if operation.locked == operations.LOCKED_ONLY_LOCKED:
        return instance.locked
    if operation.requires_host and not instance.host:
        return False
    return operation.allows(instance.vm_state, instance.task_state)


def offered(ctx: RequestContext, instance: Instance, *, host_silent: bool = False) -> list[Operation]:
    """The buttons this user may press on this instance now. A locked instance offers a non-admin
    only what a lock lets through (unlock), and one whose host is silent nothing that needs the
    host, as the services would refuse the rest."""
    locked_out = instance.locked and not ctx.is_admin
    return [
        op
        for op in BUTTONS.values()
        if (not locked_out or op.locked != operations.LOCKED_REFUSES)
        and op.rule is not None
        and policy.allowed(ctx, op.rule)
        and state_allows(op, instance, host_silent=host_silent)
    ]


# A button's form, as the operation's keywords.
_FORM_ARGUMENTS = {
    "resize": lambda fields: {"flavor_ref": fields["flavor"]},
    "snapshot": lambda fields: {"name": fields["name"]},
}


def perform(ctx: RequestContext, instance: Instance, operation: Operation,
            fields: dict[str, Any]) -> None:
    """Carry the operation out as the API would; `fields` come from its form (validated by the
    caller). Raises the services' errors unchanged."""
    form = operation.button.form if operation.button else None
    arguments = _FORM_ARGUMENTS[form](fields) if form else {}
    operations.perform(ctx, instance, operation.name, **arguments)
