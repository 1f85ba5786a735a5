"""Instance states, kept apart as Nova keeps them, and the one table of what may happen when.

vm_state    what the instance is (stable): building, active, stopped, error, deleted …
task_state  what is being done to it right now (transient): scheduling, spawning, deleting …
power_state what the hypervisor last said, as Nova's integers in the API.

`status` (what users see) is derived from the two, never stored.
"""

from __future__ import annotations

from compute_agent import messages as msg

# vm_state
BUILDING = "building"
ACTIVE = "active"
STOPPED = "stopped"
PAUSED = "paused"
SUSPENDED = "suspended"
RESIZED = "resized"
ERROR = "error"
DELETED = "deleted"

# task_state
SCHEDULING = "scheduling"
SPAWNING = "spawning"
DELETING = "deleting"
POWERING_ON = "powering-on"
POWERING_OFF = "powering-off"
REBOOTING = "rebooting"
REBOOTING_HARD = "rebooting_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
REBUILDING = "rebuilding"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_REVERTING = "resize_reverting"
IMAGE_SNAPSHOT = "image_snapshot"

# Nova's power_state integers, keyed by the contract's names
POWER_STATE_CODES = {
    msg.POWER_NOSTATE: 0,
    msg.POWER_RUNNING: 1,
    msg.POWER_PAUSED: 3,
    msg.POWER_SHUTDOWN: 4,
    msg.POWER_CRASHED: 6,
    msg.POWER_SUSPENDED: 7,
}

_STATUS_BY_VM_STATE = {
    BUILDING: "BUILD",
    ACTIVE: "ACTIVE",
    STOPPED: "SHUTOFF",
    PAUSED: "PAUSED",
    SUSPENDED: "SUSPENDED",
    RESIZED: "VERIFY_RESIZE",
    ERROR: "ERROR",
    DELETED: "DELETED",
}

# The status filter of GET /servers accepts statuses; map each back to vm_states.
VM_STATES_BY_STATUS: dict[str, list[str]] = {}
for _vm, _status in _STATUS_BY_VM_STATE.items():
    VM_STATES_BY_STATUS.setdefault(_status, []).append(_vm)


# Some tasks show through the status while they run (Nova's rules); the rest show the vm_state.
_STATUS_BY_TASK_STATE = {
    REBOOTING: "REBOOT",
    REBOOTING_HARD: "HARD_REBOOT",
    REBUILDING: "REBUILD",
    RESIZE_MIGRATING: "RESIZE",
    RESIZE_REVERTING: "REVERT_RESIZE",
}


def status(vm_state: str, task_state: str | None) -> str:
    """The OpenStack status a user sees for a vm_state/task_state pair."""
    if vm_state in (ACTIVE, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR):
        shown = _STATUS_BY_TASK_STATE.get(task_state or "")
        if shown:
            return shown
    return _STATUS_BY_VM_STATE.get(vm_state, "UNKNOWN")


class Transition:
    """A task that may start only from certain states; anything else is 409 Conflict."""

    def __init__(self, action: str, vm_states: set[str], task_states: set[str | None]):
        self.action = action
        self.vm_states = vm_states
        self.task_states = task_states

    def allows(self, vm_state: str, task_state: str | None) -> bool:
        return vm_state in self.vm_states and task_state in self.task_states


# The table. Delete is allowed from every state but one already being deleted.
TRANSITIONS: dict[str, Transition] = {
    "delete": Transition(
        "delete",
        {BUILDING, ACTIVE, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR},
        {None, SCHEDULING, SPAWNING},
    ),
    # Guest actions: (action, from vm_states, task while it runs). The vm_state each one ends in
    # is in GuestAction below, applied when the compute host reports success.
    "start": Transition("start", {STOPPED}, {None}),
    "stop": Transition("stop", {ACTIVE, ERROR}, {None}),
    "reboot": Transition("reboot", {ACTIVE}, {None}),
    "reboot_hard": Transition(
        "reboot_hard", {ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR}, {None, REBOOTING}
    ),
    "pause": Transition("pause", {ACTIVE}, {None}),
    "unpause": Transition("unpause", {PAUSED}, {None}),
    "suspend": Transition("suspend", {ACTIVE}, {None}),
    "resume": Transition("resume", {SUSPENDED}, {None}),
    "rebuild": Transition("rebuild", {ACTIVE, STOPPED, ERROR}, {None}),
    "resize": Transition("resize", {ACTIVE, STOPPED}, {None}),
    "confirm_resize": Transition("confirm_resize", {RESIZED}, {None}),
    "revert_resize": Transition("revert_resize", {RESIZED}, {None}),
    "create_image": Transition("create_image", {ACTIVE, STOPPED, PAUSED, SUSPENDED}, {None}),
    # As in Nova: metadata changes wait until the instance has settled (not building, no task).
    "update_metadata": Transition(
        "update_metadata",
        {ACTIVE, STOPPED, PAUSED, SUSPENDED},
        {None},
    ),
}


class GuestAction:
    """An action the compute host carries out: the task it runs under and where success leads."""

    def __init__(self, rule: str, task_state: str, done_vm_state: str | None):
        self.rule = rule  # the key of its Transition
        self.task_state = task_state
        self.done_vm_state = done_vm_state  # None: back to the vm_state it started from


GUEST_ACTIONS: dict[str, GuestAction] = {
    "start": GuestAction("start", POWERING_ON, ACTIVE),
    "stop": GuestAction("stop", POWERING_OFF, STOPPED),
    "reboot": GuestAction("reboot", REBOOTING, ACTIVE),
    "reboot_hard": GuestAction("reboot_hard", REBOOTING_HARD, ACTIVE),
    "pause": GuestAction("pause", PAUSING, PAUSED),
    "unpause": GuestAction("unpause", UNPAUSING, ACTIVE),
    "suspend": GuestAction("suspend", SUSPENDING, SUSPENDED),
    "resume": GuestAction("resume", RESUMING, ACTIVE),
    "rebuild": GuestAction("rebuild", REBUILDING, ACTIVE),
    "resize": GuestAction("resize", RESIZE_MIGRATING, RESIZED),
    "revert_resize": GuestAction("revert_resize", RESIZE_REVERTING, ACTIVE),
    "create_image": GuestAction("create_image", IMAGE_SNAPSHOT, None),
}
