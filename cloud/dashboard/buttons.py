"""The operations a person can click: every operation of cloud/compute/operations.py that declares a
dashboard button, offered when both tables the API obeys allow it now, its policy rule
(cloud/identity/policy.py) and its state rule.

The server re-checks both when the form is posted (operations.perform goes through the same
service functions as the API), so a button that was stale by the time it was clicked answers with
the service's own reason (409), and a forged one with 403.

The menus show MENU: the registry's buttons, plus what Horizon offers that the registry gives no
button (yet): rebuild, and rename (PUT /servers/{id}, which is not an operation). A button with a
form gets it from action_forms.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cloud.compute import guest_kinds, operations, servers, states
from cloud.compute.models import Instance
from cloud.compute.operations import Button, Operation
from cloud.identity import policy
from cloud.identity.context import RequestContext

from . import action_forms

BUTTONS: dict[str, Operation] = {
    name: op for name, op in operations.REGISTRY.items() if op.button is not None
}

# Registry operations without a button of their own, offered here until the registry gives them
# one (then the registry's wins).
_ADDED_BUTTONS = {
    "rebuild": Button(
        "Rebuild", "Rebuild {name} from an image? Its disk is recreated from the image: whatever "
        "was written on it is lost. Its name, flavor, addresses and id stay.",
        "Rebuilding {name}.", danger=True, form="rebuild"),
}

# Not an operation (it changes fields, not the server's state), offered like one. The lock
# rule is update_server's: a locked server refuses it, except for admins.
RENAME = Operation(
    "rename", rule="compute:servers:update", vm_states=None,
    task_states=frozenset({None, *states.TASK_STATES}),
    button=Button("Rename", "Rename {name}, or change its description?", "{name} updated.",
                  form="rename"),
)


def _menu() -> dict[str, Operation]:
    menu: dict[str, Operation] = {}
    for name, op in operations.REGISTRY.items():
        button = op.button or _ADDED_BUTTONS.get(name)
        if button is None:
            continue
        if name == "delete":
            menu[RENAME.name] = RENAME  # last but one, as in Horizon's menu
        menu[name] = op if op.button else dataclasses.replace(op, button=button)
    menu.setdefault(RENAME.name, RENAME)
    return menu


MENU: dict[str, Operation] = _menu()


def state_allows(operation: Operation, instance: Instance, *, host_silent: bool = False) -> bool:
    if instance.deleted or instance.task_state == states.DELETING:
        return False
    if operation.requires_host and host_silent:
        return False  # the service would answer 409: its host is not responding
    if operation.name == "evacuate" and not host_silent:
        return False  # only a server whose host is down is evacuated (400 otherwise)
    if operation.locked == operations.LOCKED_ONLY_UNLOCKED:
        return not instance.locked
    if operation.locked == operations.LOCKED_ONLY_LOCKED:
        return instance.locked
    if operation.requires_host and not instance.host:
        return False
    return operation.allows(instance.vm_state, instance.task_state)


def offered(ctx: RequestContext, instance: Instance, *, host_silent: bool = False,
            container: bool = False) -> list[Operation]:
    """The buttons this user may press on this instance now. A locked instance offers a non-admin
    only what a lock lets through (unlock), one whose host is silent nothing that needs the
    host, and a container nothing a container cannot do (guest_kinds.REFUSED), as the services
    would refuse the rest."""
    locked_out = instance.locked and not ctx.is_admin
    return [
        op
        for op in MENU.values()
        if (not locked_out or op.locked != operations.LOCKED_REFUSES)
        and not (container and guest_kinds.refusal(op.name))
        and op.rule is not None
        and policy.allowed(ctx, op.rule)
        and state_allows(op, instance, host_silent=host_silent)
    ]


def bulk_operations(ctx: RequestContext) -> list[Operation]:
    """What the instances table offers for its selected rows: every button that asks for
    nothing, under a rule this user has."""
    return [
        op for op in MENU.values()
        if action_forms.action_form(op) is None and op.rule is not None
        and policy.allowed(ctx, op.rule)
    ]


def perform(ctx: RequestContext, instance: Instance, operation: Operation,
            fields: dict[str, Any]) -> None:
    """Carry the operation out as the API would; `fields` come from its form (validated by the
    caller). Raises the services' errors unchanged."""
    form = action_forms.action_form(operation)
    arguments = form.arguments(fields) if form else {}
    if operation is RENAME:
        servers.update_server(ctx, instance, **arguments)
        return
    operations.perform(ctx, instance, operation.name, **arguments)
