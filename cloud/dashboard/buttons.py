"""The instance actions a person can click, when each is offered, and which service does it.

Whether a button shows is decided by the same two tables the API obeys: the policy rule
(cloud/identity/policy.py) and the state rule (cloud/compute/states.py TRANSITIONS). The server
re-checks both when the form is posted, so a button that was stale by the time it was clicked
answers with the service's own reason (409), and a forged one with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.compute import guest_operations, locks, servers, states
from cloud.compute.models import Instance
from cloud.identity import policy
from cloud.identity.context import RequestContext


@dataclass(frozen=True)
class Action:
    name: str  # in the URL
    label: str
    rule: str  # policy rule
    transition: str | None  # key of states.TRANSITIONS; None: no state rule
    question: str  # the confirmation, with {name}
    done: str  # the message after it was accepted
    danger: bool = False
    needs_host: bool = True  # guest actions go to the server's host
    form: str | None = None  # extra fields: "resize" (a flavor), "snapshot" (a name)


ACTIONS: dict[str, Action] = {a.name: a for a in [
    Action("start", "Start", "compute:servers:start", "start",
           "Start {name}?", "Starting {name}."),
    Action("stop", "Stop", "compute:servers:stop", "stop",
           "Shut down {name}? The guest is powered off.", "Stopping {name}.", danger=True),
    Action("reboot", "Reboot", "compute:servers:reboot", "reboot",
           "Reboot {name}? The guest is asked to restart.", "Rebooting {name}."),
    Action("reboot_hard", "Hard reboot", "compute:servers:reboot", "reboot_hard",
           "Hard reboot {name}? Like pulling the power cable: unsaved data in the guest is lost.",
           "Hard rebooting {name}.", danger=True),
    Action("pause", "Pause", "compute:servers:pause", "pause",
           "Pause {name}? It keeps its memory but stops running.", "Pausing {name}."),
    Action("unpause", "Unpause", "compute:servers:unpause", "unpause",
           "Unpause {name}?", "Unpausing {name}."),
    Action("suspend", "Suspend", "compute:servers:suspend", "suspend",
           "Suspend {name}? Its memory is saved to disk and it stops.", "Suspending {name}."),
    Action("resume", "Resume", "compute:servers:resume", "resume",
           "Resume {name}?", "Resuming {name}."),
    Action("resize", "Resize", "compute:servers:resize", "resize",
           "Resize {name} to another flavor? It restarts on the new size; then confirm or revert.",
           "Resizing {name}.", form="resize"),
    Action("confirm_resize", "Confirm resize", "compute:servers:confirm_resize", "confirm_resize",
           "Keep {name} at its new size?", "Resize of {name} confirmed.", needs_host=False),
    Action("revert_resize", "Revert resize", "compute:servers:revert_resize", "revert_resize",
           "Go back to the flavor {name} had before?", "Reverting the resize of {name}."),
    Action("snapshot", "Snapshot", "compute:servers:create_image", "create_image",
           "Take a snapshot of {name}? It becomes a new image.", "Taking a snapshot of {name}.",
           form="snapshot"),
    Action("lock", "Lock", "compute:servers:lock", None,
           "Lock {name}? Nobody but an administrator can change it until it is unlocked.",
           "{name} is locked.", needs_host=False),
    Action("unlock", "Unlock", "compute:servers:unlock", None,
           "Unlock {name}?", "{name} is unlocked.", needs_host=False),
    Action("delete", "Delete", "compute:servers:delete", "delete",
           "Delete {name}? Its disk is destroyed; this cannot be undone.", "Deleting {name}.",
           danger=True, needs_host=False),
]}


def state_allows(action: Action, instance: Instance) -> bool:
    if instance.deleted or instance.task_state == states.DELETING:
        return False
    if action.name == "lock":
        return not instance.locked
    if action.name == "unlock":
        return instance.locked
    if action.needs_host and not instance.host:
        return False
    transition = states.TRANSITIONS.get(action.transition or "")
    return transition is None or transition.allows(instance.vm_state, instance.task_state)


def offered(ctx: RequestContext, instance: Instance) -> list[Action]:
    """The actions this user may start on this instance now. A locked instance offers a
    non-admin nothing but unlock, as the services would refuse the rest."""
    locked_out = instance.locked and not ctx.is_admin
    return [
        action
        for action in ACTIONS.values()
        if (not locked_out or action.name == "unlock")
        and policy.allowed(ctx, action.rule)
        and state_allows(action, instance)
    ]


def perform(ctx: RequestContext, instance: Instance, action: Action, fields: dict[str, str]) -> None:
    """Start `action` through the service the API uses for it; `fields` come from its form
    (validated by the caller). Raises the services' errors unchanged."""
    name = action.name
    if name in guest_operations.POWER_TASKS:
        guest_operations.power(ctx, instance, name)
    elif name == "reboot":
        guest_operations.reboot(ctx, instance, "SOFT")
    elif name == "reboot_hard":
        guest_operations.reboot(ctx, instance, "HARD")
    elif name == "resize":
        guest_operations.resize(ctx, instance, fields["flavor"])
    elif name == "confirm_resize":
        guest_operations.confirm_resize(ctx, instance)
    elif name == "revert_resize":
        guest_operations.revert_resize(ctx, instance)
    elif name == "snapshot":
        guest_operations.create_image(ctx, instance, fields["name"], {})
    elif name == "lock":
        locks.lock_server(ctx, instance)
    elif name == "unlock":
        locks.unlock_server(ctx, instance)
    elif name == "delete":
        servers.delete_server(ctx, instance)
    else:  # pragma: no cover - ACTIONS and this dispatch are kept together
        raise KeyError(name)
