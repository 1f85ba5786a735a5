"""Operations: everything a user can do to an existing server, one registry entry each.

An entry declares all there is to know about one operation: its name, the policy rule that guards it
(a row of cloud/identity/policy.py), the states it may start from, the task it runs under and the
state success leads to, the InstanceAction Nova records for it, the request sent to the compute host
and the event that finishes it, the key of Nova's `POST /servers/{id}/action` body, and the
dashboard's button. Every table the layers above use is derived from this one:

    the 409 state rules         transitions.begin / Operation.allows
    the action body dispatch    cloud/api/compute/server_actions.py
    the finishing events        cloud/conductor/operation_events.py
    the dashboard's buttons     cloud/dashboard/buttons.py

What carries an operation out is registered separately by the service module that does it
(`@runs("resize")`), because this module is plain data that those modules import. An operation with a
host task and no runner of its own gets the generic one in guest_operations.py: begin the task, send
the host a PowerRequest for the instance.

Adding an operation is one entry here (with its rule in policy.RULES), the contract's task and event
names (compute_agent/messages.py), an agent method and a driver method; docs/architecture.md has the
recipe and tests/unit/compute/test_operations.py fails while any part is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compute_agent import messages as msg

from . import guest_kinds
from . import states as s

# How an operation treats a locked server.
LOCKED_REFUSES = "refuses"  # a locked server refuses it, except for admins (most operations)
LOCKED_ONLY_UNLOCKED = "only-unlocked"  # offered on an unlocked server only (lock)
LOCKED_ONLY_LOCKED = "only-locked"  # offered on a locked server only, even to members (unlock)
LOCKED_IGNORED = "ignored"  # a lock does not concern it (reading the console, an admin's repair)


@dataclass(frozen=True)
class Button:
    """How the dashboard offers an operation."""

    label: str
    question: str  # the confirmation, with {name}
    done: str  # the message once it was accepted, with {name}
    danger: bool = False
    form: str | None = None  # extra fields it asks for: "resize" (a flavor), "snapshot" (a name)


@dataclass(frozen=True)
class Operation:
    name: str  # the registry key; also the dashboard's URL word
    rule: str | None  # policy rule; None: not offered on its own (a state rule others check)
    vm_states: frozenset[str] | None  # may start from these; None: from any state
    task_states: frozenset[str | None] = frozenset({None})
    task_state: str | None = None  # held while the host works; None: done at once
    done_vm_state: str | None = None  # where success leads; None: back where it started
    record: str | None = None  # the InstanceAction name Nova records; None: not recorded
    host_task: str | None = None  # the compute host's task (the contract's TASK_*)
    finished_by: str | None = None  # the host's event that ends the task (EVENT_*)
    requires_host: bool = False  # refused (409) while the server has no host
    locked: str = LOCKED_REFUSES
    api_name: str | None = None  # its key in POST /servers/{id}/action
    button: Button | None = None

    def allows(self, vm_state: str, task_state: str | None) -> bool:
        """Whether the state rule lets it start now (locks and hosts are checked apart)."""
        in_vm_state = self.vm_states is None or vm_state in self.vm_states
        return in_vm_state and task_state in self.task_states

    @property
    def shown_name(self) -> str:
        """The name a 409 uses, as Nova words it ("Cannot 'revertResize' instance …")."""
        return self.record or self.name


_SETTLED = frozenset({s.ACTIVE, s.STOPPED, s.PAUSED, s.SUSPENDED})


def _host(name: str, **fields: Any) -> Operation:
    # Operations the compute host carries out: they need a host, run as a task and are recorded.
    fields.setdefault("record", name)
    fields.setdefault("rule", f"compute:servers:{name}")
    return Operation(name, requires_host=True, **fields)


REGISTRY: dict[str, Operation] = {op.name: op for op in [
    _host(
        "start", vm_states=frozenset({s.STOPPED}), task_state=s.POWERING_ON,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_START, finished_by=msg.EVENT_STARTED,
        api_name="os-start", button=Button("Start", "Start {name}?", "Starting {name}."),
    ),
    _host(
        "stop", vm_states=frozenset({s.ACTIVE, s.ERROR}), task_state=s.POWERING_OFF,
        done_vm_state=s.STOPPED, host_task=msg.TASK_STOP, finished_by=msg.EVENT_STOPPED,
        api_name="os-stop", button=Button(
            "Stop", "Shut down {name}? The guest is powered off.", "Stopping {name}.",
            danger=True),
    ),
    _host(
        "reboot", vm_states=frozenset({s.ACTIVE}), task_state=s.REBOOTING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_REBOOT, finished_by=msg.EVENT_REBOOTED,
        api_name="reboot", button=Button(
            "Reboot", "Reboot {name}? The guest is asked to restart.", "Rebooting {name}."),
    ),
    # The API reaches it through "reboot" with type HARD; it may also interrupt a soft reboot.
    _host(
        "reboot_hard", rule="compute:servers:reboot", record="reboot",
        vm_states=frozenset({s.ACTIVE, s.STOPPED, s.PAUSED, s.SUSPENDED, s.ERROR}),
        task_states=frozenset({None, s.REBOOTING}), task_state=s.REBOOTING_HARD,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_REBOOT, finished_by=msg.EVENT_REBOOTED,
        button=Button(
            "Hard reboot",
            "Hard reboot {name}? Like pulling the power cable: unsaved data in the guest is lost.",
            "Hard rebooting {name}.", danger=True),
    ),
    _host(
        "pause", vm_states=frozenset({s.ACTIVE}), task_state=s.PAUSING, done_vm_state=s.PAUSED,
        host_task=msg.TASK_PAUSE, finished_by=msg.EVENT_PAUSED, api_name="pause",
        button=Button(
            "Pause", "Pause {name}? It keeps its memory but stops running.", "Pausing {name}."),
    ),
    _host(
        "unpause", vm_states=frozenset({s.PAUSED}), task_state=s.UNPAUSING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_UNPAUSE, finished_by=msg.EVENT_UNPAUSED,
        api_name="unpause", button=Button("Unpause", "Unpause {name}?", "Unpausing {name}."),
    ),
    _host(
        "suspend", vm_states=frozenset({s.ACTIVE}), task_state=s.SUSPENDING,
        done_vm_state=s.SUSPENDED, host_task=msg.TASK_SUSPEND, finished_by=msg.EVENT_SUSPENDED,
        api_name="suspend", button=Button(
            "Suspend", "Suspend {name}? Its memory is saved to disk and it stops.",
            "Suspending {name}."),
    ),
    _host(
        "resume", vm_states=frozenset({s.SUSPENDED}), task_state=s.RESUMING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_RESUME, finished_by=msg.EVENT_RESUMED,
        api_name="resume", button=Button("Resume", "Resume {name}?", "Resuming {name}."),
    ),
    _host(
        "rebuild", vm_states=frozenset({s.ACTIVE, s.STOPPED, s.ERROR}), task_state=s.REBUILDING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_REBUILD, finished_by=msg.EVENT_REBUILT,
        api_name="rebuild",
    ),
    _host(
        "resize", vm_states=frozenset({s.ACTIVE, s.STOPPED}), task_state=s.RESIZE_MIGRATING,
        done_vm_state=s.RESIZED, host_task=msg.TASK_RESIZE, finished_by=msg.EVENT_RESIZED,
        api_name="resize", button=Button(
            "Resize",
            "Resize {name} to another flavor? It restarts on the new size; then confirm or revert.",
            "Resizing {name}.", form="resize"),
    ),
    # Moves to another host (cloud/scheduler/moves.py starts them; the hosts' reports take
    # them through their steps, cloud/conductor/migration_events.py).
    Operation(
        "live_migrate", rule="compute:servers:migrate_live", record="live-migration",
        vm_states=frozenset({s.ACTIVE, s.PAUSED}), task_state=s.MIGRATING, requires_host=True,
        api_name="os-migrateLive",
        button=Button("Live migrate", "Move {name} to another host while it runs?",
                      "Live-migrating {name}."),
    ),
    Operation(
        "migrate", rule="compute:servers:migrate", record="migrate",
        vm_states=frozenset({s.ACTIVE, s.STOPPED}), task_state=s.RESIZE_PREP,
        done_vm_state=s.RESIZED, requires_host=True, api_name="migrate",
        button=Button(
            "Migrate", "Move {name} to another host? It is shut down, moved, and started there; "
            "then confirm or revert.", "Migrating {name}."),
    ),
    # Rebuilding a server of a dead host on another one (cloud/scheduler/evacuations.py). Its
    # own host cannot answer, which is the point, so it needs none up: evacuation.check asks for
    # one that is down instead. The new host's rebuild report finishes it.
    Operation(
        "evacuate", rule="compute:servers:evacuate", record="evacuate",
        vm_states=frozenset({s.ACTIVE, s.STOPPED, s.ERROR}), task_state=s.REBUILD_SPAWNING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_REBUILD, finished_by=msg.EVENT_REBUILT,
        api_name="evacuate",
        button=Button(
            "Evacuate", "Rebuild {name} on another host? Its host is down: the server starts "
            "again from its image, with its addresses, ports and id. What was on its disk is "
            "lost.", "Evacuating {name}.", danger=True),
    ),
    # Keeping the new size is a database change only: the host already runs it.
    Operation(
        "confirm_resize", rule="compute:servers:confirm_resize", record="confirmResize",
        vm_states=frozenset({s.RESIZED}), api_name="confirmResize",
        button=Button("Confirm resize", "Keep {name} at its new size?",
                      "Resize of {name} confirmed."),
    ),
    _host(
        "revert_resize", record="revertResize", vm_states=frozenset({s.RESIZED}),
        task_state=s.RESIZE_REVERTING, done_vm_state=s.ACTIVE, host_task=msg.TASK_RESIZE,
        finished_by=msg.EVENT_RESIZED, api_name="revertResize",
        button=Button("Revert resize", "Go back to the flavor {name} had before?",
                      "Reverting the resize of {name}."),
    ),
    _host(
        "snapshot", rule="compute:servers:create_image", record="createImage",
        vm_states=frozenset({s.ACTIVE, s.STOPPED, s.PAUSED, s.SUSPENDED}),
        task_state=s.IMAGE_SNAPSHOT, host_task=msg.TASK_SNAPSHOT,
        finished_by=msg.EVENT_SNAPSHOT_UPLOADED, api_name="createImage",
        button=Button("Snapshot", "Take a snapshot of {name}? It becomes a new image.",
                      "Taking a snapshot of {name}.", form="snapshot"),
    ),
    # Rescue: the guest boots from a rescue image, its own disk attached second
    # (cloud/compute/rescue.py); unrescue boots it from its own disk again.
    _host(
        "rescue", vm_states=frozenset({s.ACTIVE, s.STOPPED, s.ERROR}), task_state=s.RESCUING,
        done_vm_state=s.RESCUED, host_task=msg.TASK_RESCUE, finished_by=msg.EVENT_RESCUED,
        api_name="rescue", button=Button(
            "Rescue", "Rescue {name}? It restarts from a rescue image with its own disk "
            "attached second.", "Rescuing {name}.", form="rescue"),
    ),
    _host(
        "unrescue", vm_states=frozenset({s.RESCUED}), task_state=s.UNRESCUING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_UNRESCUE, finished_by=msg.EVENT_UNRESCUED,
        api_name="unrescue", button=Button(
            "Unrescue", "Restart {name} from its own disk?", "Unrescuing {name}."),
    ),
    # Shelve: the disk goes to an image; with KUMO_SHELVED_OFFLOAD_TIME 0 (Nova's
    # shelved_offload_time) the host lets go at once and the shelve ends in SHELVED_OFFLOADED
    # (cloud/compute/shelving.py).
    _host(
        "shelve", vm_states=frozenset({s.ACTIVE, s.STOPPED, s.PAUSED, s.SUSPENDED}),
        task_state=s.SHELVING, done_vm_state=s.SHELVED, host_task=msg.TASK_SHELVE,
        finished_by=msg.EVENT_SHELVED, api_name="shelve", button=Button(
            "Shelve", "Shelve {name}? Its disk is saved to an image and the host's resources "
            "are freed; unshelve boots it again.", "Shelving {name}."),
    ),
    _host(
        "shelve_offload", record="shelveOffload", vm_states=frozenset({s.SHELVED}),
        task_state=s.SHELVING_OFFLOADING, done_vm_state=s.SHELVED_OFFLOADED,
        host_task=msg.TASK_SHELVE_OFFLOAD, finished_by=msg.EVENT_SHELVE_OFFLOADED,
        api_name="shelveOffload", button=Button(
            "Shelve offload", "Remove shelved {name} from its host?", "Offloading {name}."),
    ),
    # Unshelve of a server still on its host starts it there; one offloaded goes through the
    # scheduler like a build ("unshelve_offloaded", chosen by the runner).
    Operation(
        "unshelve", rule="compute:servers:unshelve", record="unshelve",
        vm_states=frozenset({s.SHELVED, s.SHELVED_OFFLOADED}), task_state=s.UNSHELVING,
        done_vm_state=s.ACTIVE, host_task=msg.TASK_UNSHELVE, finished_by=msg.EVENT_UNSHELVED,
        api_name="unshelve", button=Button("Unshelve", "Unshelve {name}?", "Unshelving {name}."),
    ),
    Operation(
        "unshelve_offloaded", rule=None, record="unshelve",
        vm_states=frozenset({s.SHELVED_OFFLOADED}), task_state=s.SCHEDULING,
    ),
    _host(
        "backup", rule="compute:servers:create_backup", record="createBackup",
        vm_states=frozenset({s.ACTIVE, s.STOPPED, s.PAUSED, s.SUSPENDED}),
        task_state=s.IMAGE_BACKUP, host_task=msg.TASK_BACKUP,
        finished_by=msg.EVENT_BACKUP_UPLOADED, api_name="createBackup", button=Button(
            "Back up", "Back up {name} to an image? The oldest backups of the same type beyond "
            "the rotation are deleted.", "Backing up {name}.", form="create_backup"),
    ),
    # Nova holds no task for it: the host injects an NMI and the guest's kernel dumps itself.
    _host(
        "trigger_crash_dump", vm_states=frozenset({s.ACTIVE, s.PAUSED, s.RESCUED, s.RESIZED,
                                                   s.ERROR}),
        host_task=msg.TASK_TRIGGER_CRASH_DUMP, finished_by=msg.EVENT_CRASH_DUMP_TRIGGERED,
        api_name="trigger_crash_dump",
    ),
    # A port plugged in or out (POST/DELETE /servers/{id}/os-interface,
    # cloud/compute/server_interfaces.py).
    _host(
        "attach_interface", rule="compute:server_interfaces:create",
        vm_states=frozenset({s.ACTIVE, s.PAUSED, s.STOPPED}), task_state=s.INTERFACE_ATTACHING,
        host_task=msg.TASK_ATTACH_INTERFACE, finished_by=msg.EVENT_INTERFACE_ATTACHED,
    ),
    _host(
        "detach_interface", rule="compute:server_interfaces:delete",
        vm_states=frozenset({s.ACTIVE, s.PAUSED, s.STOPPED}), task_state=s.INTERFACE_DETACHING,
        host_task=msg.TASK_DETACH_INTERFACE, finished_by=msg.EVENT_INTERFACE_DETACHED,
    ),
    # A volume plugged in or out (POST/DELETE /servers/{id}/os-volume_attachments,
    # cloud/compute/server_volumes.py); Nova's states (a shelved-offloaded server: below).
    _host(
        "attach_volume", rule="compute:volume_attachments:create",
        vm_states=frozenset({s.ACTIVE, s.PAUSED, s.STOPPED, s.RESIZED}),
        task_state=s.VOLUME_ATTACHING, host_task=msg.TASK_ATTACH_VOLUME,
        finished_by=msg.EVENT_VOLUME_ATTACHED,
    ),
    _host(
        "detach_volume", rule="compute:volume_attachments:delete",
        vm_states=frozenset({s.ACTIVE, s.PAUSED, s.STOPPED, s.RESIZED}),
        task_state=s.VOLUME_DETACHING, host_task=msg.TASK_DETACH_VOLUME,
        finished_by=msg.EVENT_VOLUME_DETACHED,
    ),
    # A shelved-offloaded server has no host: a volume is attached or detached at once (its
    # mapping and attachment only; Nova's _attach_volume_shelved_offloaded) and the unshelve's
    # spawn gives the guest its disks. Chosen by the attach_volume/detach_volume runners.
    Operation(
        "attach_volume_offloaded", rule=None, record="attach_volume",
        vm_states=frozenset({s.SHELVED_OFFLOADED}),
    ),
    Operation(
        "detach_volume_offloaded", rule=None, record="detach_volume",
        vm_states=frozenset({s.SHELVED_OFFLOADED}),
    ),
    # A question for the host, answered at once: no task, no record, any settled or busy state.
    _host(
        "console_output", record=None, vm_states=None, task_states=frozenset(
            {None, *s.TASK_STATES}), host_task=msg.TASK_CONSOLE_OUTPUT,
        locked=LOCKED_IGNORED, api_name="os-getConsoleOutput",
    ),
    Operation(
        "lock", rule="compute:servers:lock", record="lock", vm_states=None,
        task_states=frozenset({None, *s.TASK_STATES}), locked=LOCKED_ONLY_UNLOCKED,
        api_name="lock", button=Button(
            "Lock", "Lock {name}? Nobody but an administrator can change it until it is unlocked.",
            "{name} is locked."),
    ),
    Operation(
        "unlock", rule="compute:servers:unlock", record="unlock", vm_states=None,
        task_states=frozenset({None, *s.TASK_STATES}), locked=LOCKED_ONLY_LOCKED,
        api_name="unlock", button=Button("Unlock", "Unlock {name}?", "{name} is unlocked."),
    ),
    # An admin's repair: from any state, clearing any task.
    Operation(
        "reset_state", rule="compute:servers:reset_state", record="resetState", vm_states=None,
        task_states=frozenset({None, *s.TASK_STATES}), locked=LOCKED_IGNORED,
        api_name="os-resetState",
    ),
    # Delete is allowed from every state and during any task (Nova's delete has no task rule: a
    # backup or a migration under way does not keep a server alive) but while already being
    # deleted; the host's `destroyed` report completes it (conductor/instance_events.py), or the
    # API at once without a host. The interrupted task's late report finds no task and is ignored.
    Operation(
        "delete", rule="compute:servers:delete", record="delete",
        vm_states=frozenset({s.BUILDING, s.ACTIVE, s.STOPPED, s.PAUSED, s.SUSPENDED, s.RESIZED,
                             s.ERROR, s.RESCUED, s.SHELVED, s.SHELVED_OFFLOADED}),
        task_states=frozenset({None, *s.TASK_STATES} - {s.DELETING}), task_state=s.DELETING,
        host_task=msg.TASK_DESTROY,
        button=Button("Delete", "Delete {name}? Its disk is destroyed; this cannot be undone.",
                      "Deleting {name}.", danger=True),
    ),
    # Nova's deferred delete, with no soft delete here (cloud/compute/deferred_delete.py):
    # restore starts from SOFT_DELETED only, a state no server is ever in, so it is always 409;
    # forceDelete is a delete from any state. injectNetworkInfo (admins) is accepted from any state.
    Operation(
        "restore", rule="compute:servers:restore", record="restore", vm_states=frozenset(),
        api_name="restore",
    ),
    Operation(
        "force_delete", rule="compute:servers:force_delete", vm_states=None,
        task_states=frozenset({None, *s.TASK_STATES}), api_name="forceDelete",
    ),
    Operation(
        "inject_network_info", rule="compute:servers:inject_network_info", vm_states=None,
        task_states=frozenset({None, *s.TASK_STATES}), api_name="injectNetworkInfo",
    ),
    # As in Nova: metadata changes wait until the instance has settled (not building, no task).
    Operation("update_metadata", rule=None, vm_states=_SETTLED),
]}

BY_API_NAME: dict[str, Operation] = {op.api_name: op for op in REGISTRY.values() if op.api_name}

# Who carries each operation out: registered by the service modules (see `runs`).
Runner = Callable[..., Any]
_RUNNERS: dict[str, Runner] = {}
_HOST_DEFAULT = "*host*"


def runs(*names: str) -> Callable[[Runner], Runner]:
    """Register the decorated service function as the runner of the named operations.

    It is called as `runner(ctx, instance, **arguments)`; `runs()` with no name registers the
    generic runner of host operations that have none of their own (called with `operation=`)."""

    def register(runner: Runner) -> Runner:
        keys = names or (_HOST_DEFAULT,)
        for name in keys:
            if name != _HOST_DEFAULT and name not in REGISTRY:
                raise KeyError(f"no operation named {name!r}")
            if name in _RUNNERS:
                raise ValueError(f"operation {name!r} already has a runner")
        _RUNNERS.update(dict.fromkeys(keys, runner))
        return runner

    return register


def runner_for(operation: Operation) -> Runner | None:
    """The function that carries the operation out, or None when nothing can (a state rule)."""
    runner = _RUNNERS.get(operation.name)
    if runner is not None:
        return runner
    generic = _RUNNERS.get(_HOST_DEFAULT)
    if operation.host_task is None or generic is None:
        return None

    def run(ctx: Any, instance: Any, **arguments: Any) -> Any:
        return generic(ctx, instance, operation=operation, **arguments)

    return run


def perform(ctx: Any, instance: Any, operation_name: str, /, **arguments: Any) -> Any:
    """Carry out the named operation on `instance` for `ctx`, through its runner; the runner's
    answer (an image id, console text, the rebuilt server…) is returned. Raises its errors."""
    operation = REGISTRY[operation_name]
    runner = runner_for(operation)
    if runner is None:
        raise LookupError(f"operation {operation_name!r} has no runner")
    # Before the runner: nothing is begun, recorded or sent for what a container cannot do.
    guest_kinds.refuse_for_container(instance, operation.name, operation.shown_name)
    return runner(ctx, instance, **arguments)
