"""Volume and snapshot statuses, Cinder's names, and the one table of which status may follow
which. Every change of a volume's status goes through `transitions.move()`, a conditional UPDATE
against this table."""

from __future__ import annotations

# Volume status
CREATING = "creating"
AVAILABLE = "available"
RESERVED = "reserved"
ATTACHING = "attaching"
IN_USE = "in-use"
DETACHING = "detaching"
EXTENDING = "extending"
DELETING = "deleting"
UPLOADING = "uploading"
DOWNLOADING = "downloading"
MAINTENANCE = "maintenance"
ERROR = "error"
ERROR_DELETING = "error_deleting"
ERROR_EXTENDING = "error_extending"

# Volume attach_status
DETACHED = "detached"
ATTACHED = "attached"

# Attachment status
ATTACH_RESERVED = "reserved"
ATTACH_ATTACHING = "attaching"
ATTACH_ATTACHED = "attached"
ATTACH_DETACHING = "detaching"
ATTACH_ERROR = "error_attaching"

# Snapshot status (creating, available, deleting and error are shared with volumes)
SNAPSHOT_STATUSES = (CREATING, AVAILABLE, DELETING, ERROR, ERROR_DELETING)

# new status -> the statuses a volume may move to it from. Cinder's rules, as its API enforces
# them: delete from available or an error; attach only when available (no multiattach yet);
# extend only when available (an in-use extend needs the guest told, not done here); upload to
# an image from available or, forced, in-use.
VOLUME_MOVES: dict[str, frozenset[str]] = {
    AVAILABLE: frozenset({CREATING, RESERVED, ATTACHING, DETACHING, EXTENDING, UPLOADING,
                          DOWNLOADING, MAINTENANCE}),
    RESERVED: frozenset({AVAILABLE}),
    ATTACHING: frozenset({AVAILABLE, RESERVED}),
    IN_USE: frozenset({RESERVED, ATTACHING, DETACHING, UPLOADING}),
    DETACHING: frozenset({IN_USE}),
    EXTENDING: frozenset({AVAILABLE}),
    UPLOADING: frozenset({AVAILABLE, IN_USE}),
    DOWNLOADING: frozenset({CREATING}),
    DELETING: frozenset({AVAILABLE, ERROR, ERROR_EXTENDING, ERROR_DELETING}),
    ERROR: frozenset({CREATING, DOWNLOADING}),
    ERROR_EXTENDING: frozenset({EXTENDING}),
    ERROR_DELETING: frozenset({DELETING}),
    MAINTENANCE: frozenset({AVAILABLE, IN_USE}),
}

VOLUME_STATUSES = frozenset(VOLUME_MOVES) | {CREATING}

# new status -> from, for snapshots.
SNAPSHOT_MOVES: dict[str, frozenset[str]] = {
    AVAILABLE: frozenset({CREATING}),
    ERROR: frozenset({CREATING}),
    DELETING: frozenset({AVAILABLE, ERROR, ERROR_DELETING}),
    ERROR_DELETING: frozenset({DELETING}),
}


def may_move(current: str, new: str) -> bool:
    return current in VOLUME_MOVES.get(new, frozenset())
