"""Instance states, kept apart as Nova keeps them. What may happen in which state is declared per
operation in operations.py.

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
# Booted from a rescue image with its own disk attached (cloud/compute/rescue.py).
RESCUED = "rescued"
# Its disk saved to an image: still on its host (stopped), or offloaded with no host at all
# (cloud/compute/shelving.py).
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

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
# An evacuation: rebuilt from its image on another host because its own host is down (Nova's
# name for the rebuild's spawn on the new host).
REBUILD_SPAWNING = "rebuild_spawning"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_REVERTING = "resize_reverting"
IMAGE_SNAPSHOT = "image_snapshot"
# Moving to another host (compute/migrations.py): live, and the steps of a cold one.
MIGRATING = "migrating"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
# Rescue, shelve, backup (Nova's names) and a port plugged in or out (Kumo's: Nova holds no
# task for those, but one at a time per server keeps the host's work in order).
RESCUING = "rescuing"
UNRESCUING = "unrescuing"
SHELVING = "shelving"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"
IMAGE_BACKUP = "image_backup"
INTERFACE_ATTACHING = "interface_attaching"
INTERFACE_DETACHING = "interface_detaching"
# A volume plugged in or out (os-volume_attachments); a build waiting for the volumes it boots
# from to be made (Nova's block_device_mapping).
VOLUME_ATTACHING = "volume_attaching"
VOLUME_DETACHING = "volume_detaching"
BLOCK_DEVICE_MAPPING = "block_device_mapping"
TASK_STATES = frozenset({
    SCHEDULING, SPAWNING, DELETING, POWERING_ON, POWERING_OFF, REBOOTING, REBOOTING_HARD, PAUSING,
    UNPAUSING, SUSPENDING, RESUMING, REBUILDING, REBUILD_SPAWNING, RESIZE_MIGRATING,
    RESIZE_REVERTING, IMAGE_SNAPSHOT,
    MIGRATING, RESIZE_PREP, RESIZE_MIGRATED, RESIZE_FINISH,
    RESCUING, UNRESCUING, SHELVING, SHELVING_OFFLOADING, UNSHELVING, IMAGE_BACKUP,
    INTERFACE_ATTACHING, INTERFACE_DETACHING, VOLUME_ATTACHING, VOLUME_DETACHING,
    BLOCK_DEVICE_MAPPING,
})

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
    RESCUED: "RESCUE",
    SHELVED: "SHELVED",
    SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
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
    REBUILD_SPAWNING: "REBUILD",
    RESIZE_MIGRATING: "RESIZE",
    RESIZE_REVERTING: "REVERT_RESIZE",
    RESIZE_PREP: "RESIZE",
    RESIZE_MIGRATED: "RESIZE",
    RESIZE_FINISH: "RESIZE",
    MIGRATING: "MIGRATING",
}


def shown_task_state(vm_state: str, task_state: str | None) -> str | None:
    """The task state the API shows. An offloaded server being unshelved goes through the
    scheduler as a build does (scheduling, spawning); Nova shows that whole way as unshelving."""
    if vm_state == SHELVED_OFFLOADED and task_state in (SCHEDULING, SPAWNING):
        return UNSHELVING
    return task_state


def status(vm_state: str, task_state: str | None) -> str:
    """The OpenStack status a user sees for a vm_state/task_state pair."""
    if vm_state in (ACTIVE, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR):
        shown = _STATUS_BY_TASK_STATE.get(task_state or "")
        if shown:
            return shown
    return _STATUS_BY_VM_STATE.get(vm_state, "UNKNOWN")


# Migration.status, by Nova's names. A live migration goes queued → preparing → running →
# completed; a cold one (or a resize to another host) pre-migrating → migrating → post-migrating
# → finished, then confirmed or reverting → reverted. Any of them can end failed (nothing moved),
# cancelled (aborted) or error (the reconciler had to give up on it).
MIGRATION_QUEUED = "queued"
MIGRATION_PREPARING = "preparing"
MIGRATION_RUNNING = "running"
MIGRATION_COMPLETED = "completed"
MIGRATION_PRE_MIGRATING = "pre-migrating"
MIGRATION_MIGRATING = "migrating"
MIGRATION_POST_MIGRATING = "post-migrating"
MIGRATION_FINISHED = "finished"
MIGRATION_CONFIRMED = "confirmed"
MIGRATION_REVERTING = "reverting"
MIGRATION_REVERTED = "reverted"
MIGRATION_FAILED = "failed"
MIGRATION_CANCELLED = "cancelled"
MIGRATION_ERROR = "error"
# An evacuation (a rebuild on another host while its own is down) is accepted, then done or
# failed, as Nova records it. It is not "in progress" in the sense below: the dead source keeps
# no claim worth holding a domain for, and a source that returns must lose its copy at once.
MIGRATION_ACCEPTED = "accepted"
MIGRATION_DONE = "done"
# Where nothing more happens: whatever the migration still holds can be given back.
MIGRATION_FINAL = frozenset({
    MIGRATION_COMPLETED, MIGRATION_CONFIRMED, MIGRATION_REVERTED, MIGRATION_FAILED,
    MIGRATION_CANCELLED, MIGRATION_ERROR, MIGRATION_DONE,
})
# Under way: the instance holds claims on two hosts.
MIGRATION_IN_PROGRESS = frozenset({
    MIGRATION_QUEUED, MIGRATION_PREPARING, MIGRATION_RUNNING, MIGRATION_PRE_MIGRATING,
    MIGRATION_MIGRATING, MIGRATION_POST_MIGRATING, MIGRATION_FINISHED, MIGRATION_REVERTING,
})
