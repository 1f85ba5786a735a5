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


def status(vm_state: str, task_state: str | None) -> str:
    """The OpenStack status a user sees for a vm_state/task_state pair."""
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
    # As in Nova: metadata changes wait until the instance has settled (not building, no task).
    "update_metadata": Transition(
        "update_metadata",
        {ACTIVE, STOPPED, PAUSED, SUSPENDED},
        {None},
    ),
}
