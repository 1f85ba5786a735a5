"""The contract's names: its version, queues, task names, power states, events and actions, and
how a host signs what it sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

__all__ = [
    "ACTION_ATTACH_INTERFACE",
    "ACTION_BACKUP",
    "ACTION_CONSOLE_OUTPUT",
    "ACTION_DETACH_INTERFACE",
    "ACTION_MIGRATION",
    "ACTION_PAUSE",
    "ACTION_REBOOT",
    "ACTION_REBUILD",
    "ACTION_RESCUE",
    "ACTION_RESIZE",
    "ACTION_RESUME",
    "ACTION_SHELVE",
    "ACTION_SHELVE_OFFLOAD",
    "ACTION_SNAPSHOT",
    "ACTION_START",
    "ACTION_STOP",
    "ACTION_SUSPEND",
    "ACTION_TRIGGER_CRASH_DUMP",
    "ACTION_UNPAUSE",
    "ACTION_UNRESCUE",
    "ACTION_UNSHELVE",
    "COMPUTE_QUEUE_PREFIX",
    "CONDUCTOR_QUEUE",
    "CONTRACT_VERSION",
    "DEFAULT_STOP_TIMEOUT",
    "EVENT_ACTION_FAILED",
    "EVENT_BACKUP_UPLOADED",
    "EVENT_CONSOLE_OUTPUT",
    "EVENT_CRASH_DUMP_TRIGGERED",
    "EVENT_DESTROYED",
    "EVENT_DISK_MIGRATED",
    "EVENT_INTERFACE_ATTACHED",
    "EVENT_INTERFACE_DETACHED",
    "EVENT_LIVE_MIGRATED",
    "EVENT_MIGRATION_FINISHED",
    "EVENT_MIGRATION_PREPARED",
    "EVENT_MIGRATION_PROGRESS",
    "EVENT_MIGRATION_REVERTED",
    "EVENT_PAUSED",
    "EVENT_REBOOTED",
    "EVENT_REBUILT",
    "EVENT_RESCUED",
    "EVENT_RESIZED",
    "EVENT_RESUMED",
    "EVENT_SHELVED",
    "EVENT_SHELVE_OFFLOADED",
    "EVENT_SNAPSHOT_UPLOADED",
    "EVENT_SPAWNED",
    "EVENT_SPAWN_FAILED",
    "EVENT_STARTED",
    "EVENT_STOPPED",
    "EVENT_SUSPENDED",
    "EVENT_UNPAUSED",
    "EVENT_UNRESCUED",
    "EVENT_UNSHELVED",
    "HOST_NAME",
    "METADATA_ADDRESS",
    "METADATA_ADDRESS_HEADER",
    "METADATA_MAX_SKEW",
    "METADATA_NETWORK_HEADER",
    "METADATA_PREFIX",
    "METADATA_SIGNATURE_HEADER",
    "METADATA_SIGNER_HEADER",
    "METADATA_TIME_HEADER",
    "POWER_CRASHED",
    "POWER_NOSTATE",
    "POWER_PAUSED",
    "POWER_RUNNING",
    "POWER_SHUTDOWN",
    "POWER_SUSPENDED",
    "REBOOT_HARD",
    "REBOOT_SOFT",
    "SCHEDULER_QUEUE",
    "SIGNATURE_HEADER",
    "SIGNER_HEADER",
    "TASK_ABORT_MIGRATION",
    "TASK_ATTACH_INTERFACE",
    "TASK_BACKUP",
    "TASK_BUILD_TIMEOUTS",
    "TASK_CONDUCTOR_ALIVE",
    "TASK_CONSOLE_OUTPUT",
    "TASK_DESTROY",
    "TASK_DETACH_INTERFACE",
    "TASK_DOMAINS_CHANGED",
    "TASK_FINISH_MIGRATION",
    "TASK_FORCE_COMPLETE_MIGRATION",
    "TASK_GUEST_STATS",
    "TASK_HOST_REPORT",
    "TASK_INSTANCE_EVENT",
    "TASK_KICK_DRAIN",
    "TASK_LIVE_MIGRATE",
    "TASK_MIGRATE_DISK",
    "TASK_PAUSE",
    "TASK_PREPARE_MIGRATION",
    "TASK_REBOOT",
    "TASK_REBUILD",
    "TASK_REFRESH_PORTS",
    "TASK_REMOVE_ROUTER",
    "TASK_RESCUE",
    "TASK_RESIZE",
    "TASK_RESUME",
    "TASK_REVERT_MIGRATION",
    "TASK_SCHEDULER_ALIVE",
    "TASK_SCHEDULE_INSTANCE",
    "TASK_SHELVE",
    "TASK_SHELVE_OFFLOAD",
    "TASK_SNAPSHOT",
    "TASK_SPAWN",
    "TASK_START",
    "TASK_STOP",
    "TASK_SUSPEND",
    "TASK_SYNC_ROUTER",
    "TASK_TRIGGER_CRASH_DUMP",
    "TASK_UNPAUSE",
    "TASK_UNRESCUE",
    "TASK_UNSHELVE",
    "compute_queue",
    "metadata_signature",
    "redis_unacked_keys",
    "report_signature",
]

# 1.9: block storage (compute_agent/messages/volumes.py).
# 1.10: DomainsChanged (TASK_DOMAINS_CHANGED) after an instance task, instead of a whole HostReport.
# 1.11: GuestStatsReport carries the agent's task timings (task_runs, task_waits).
# 1.12: InstanceEvent.domains_changed: the DomainsChanged of the task it ends, in the same message.
CONTRACT_VERSION = "1.12"

# Queues
SCHEDULER_QUEUE = "scheduler"
CONDUCTOR_QUEUE = "conductor"
COMPUTE_QUEUE_PREFIX = "compute."

# Task names (the Celery task name is the routing contract; defined once here)
TASK_SCHEDULE_INSTANCE = "scheduler.schedule_instance"
TASK_SCHEDULER_ALIVE = "scheduler.report_alive"
TASK_KICK_DRAIN = "scheduler.kick_drain"  # the control plane's own: the next step of a host drain
TASK_HOST_REPORT = "conductor.host_report"
TASK_INSTANCE_EVENT = "conductor.instance_event"
# After an instance task, or when guests stop by themselves (contract 1.10): DomainsChanged, the
# domains it touched. Its own task name, so that a conductor older than 1.10 drops it as unknown
# rather than read it as a HostReport that lists only these domains (every other one gone).
TASK_DOMAINS_CHANGED = "conductor.domains_changed"
# Each host's guests' counters every KUMO_GUEST_STATS_INTERVAL s (contract 1.8): GuestStatsReport.
TASK_GUEST_STATS = "conductor.guest_stats"
TASK_CONDUCTOR_ALIVE = "conductor.report_alive"
TASK_BUILD_TIMEOUTS = "conductor.check_build_timeouts"
TASK_SPAWN = "compute.spawn"
TASK_DESTROY = "compute.destroy"
# Instance actions on a running host (contract 1.1). Each answers with one InstanceEvent: the
# action's own event on success, EVENT_ACTION_FAILED (with `action` and `message`) otherwise.
TASK_START = "compute.start"  # PowerRequest -> EVENT_STARTED
TASK_STOP = "compute.stop"  # PowerRequest (timeout) -> EVENT_STOPPED
TASK_REBOOT = "compute.reboot"  # RebootRequest -> EVENT_REBOOTED
TASK_PAUSE = "compute.pause"  # PowerRequest -> EVENT_PAUSED
TASK_UNPAUSE = "compute.unpause"  # PowerRequest -> EVENT_UNPAUSED
TASK_SUSPEND = "compute.suspend"  # PowerRequest -> EVENT_SUSPENDED
TASK_RESUME = "compute.resume"  # PowerRequest -> EVENT_RESUMED
TASK_CONSOLE_OUTPUT = "compute.console_output"  # ConsoleOutputRequest -> EVENT_CONSOLE_OUTPUT
TASK_SNAPSHOT = "compute.snapshot"  # SnapshotRequest -> EVENT_SNAPSHOT_UPLOADED
# Re-create the domain from a SpawnRequest on the same host: rebuild (new image, new root disk) and
# resize or revert (new sizes, the root disk kept and grown).
TASK_REBUILD = "compute.rebuild"  # SpawnRequest -> EVENT_REBUILT
TASK_RESIZE = "compute.resize"  # SpawnRequest -> EVENT_RESIZED
# Moving an instance to another host (contract 1.3), every request a MigrationRequest. Failures
# answer EVENT_ACTION_FAILED with action ACTION_MIGRATION and the migration's id.
#   live: destination PREPARE_MIGRATION -> source LIVE_MIGRATE (progress events, then
#         LIVE_MIGRATED: the guest runs on the destination, nothing of it is left on the source)
#   cold: destination PREPARE_MIGRATION -> source MIGRATE_DISK (the guest is shut down, its disk
#         sent) -> destination FINISH_MIGRATION (it runs there, resized if asked) -> then either
#         DESTROY on the source (confirm) or DESTROY on the destination and REVERT_MIGRATION on
#         the source (revert: the guest it kept starts again)
TASK_PREPARE_MIGRATION = "compute.prepare_migration"  # -> EVENT_MIGRATION_PREPARED
TASK_LIVE_MIGRATE = "compute.live_migrate"  # -> EVENT_MIGRATION_PROGRESS…, EVENT_LIVE_MIGRATED
TASK_ABORT_MIGRATION = "compute.abort_migration"  # the LIVE_MIGRATE in progress fails, cancelled
TASK_FORCE_COMPLETE_MIGRATION = "compute.force_complete_migration"  # pause the guest to converge
TASK_MIGRATE_DISK = "compute.migrate_disk"  # -> EVENT_DISK_MIGRATED
TASK_FINISH_MIGRATION = "compute.finish_migration"  # -> EVENT_MIGRATION_FINISHED
TASK_REVERT_MIGRATION = "compute.revert_migration"  # -> EVENT_MIGRATION_REVERTED
# Rescue, shelve, backup, a crash dump and ports. Each answers with its own event, or
# EVENT_ACTION_FAILED with the ACTION_* of the same name. A server shelved off its host comes back
# through the scheduler's ordinary spawn, its SpawnRequest naming the snapshot (restore_from).
TASK_RESCUE = "compute.rescue"  # RescueRequest -> EVENT_RESCUED
TASK_UNRESCUE = "compute.unrescue"  # SpawnRequest (the guest as it normally is) -> EVENT_UNRESCUED
TASK_SHELVE = "compute.shelve"  # SnapshotRequest -> EVENT_SHELVED (EVENT_SHELVE_OFFLOADED: offload)
TASK_SHELVE_OFFLOAD = "compute.shelve_offload"  # PowerRequest -> EVENT_SHELVE_OFFLOADED
TASK_UNSHELVE = "compute.unshelve"  # PowerRequest (a shelved guest still here) -> EVENT_UNSHELVED
TASK_BACKUP = "compute.backup"  # SnapshotRequest -> EVENT_BACKUP_UPLOADED
TASK_TRIGGER_CRASH_DUMP = "compute.trigger_crash_dump"  # PowerRequest -> EVENT_CRASH_DUMP_TRIGGERED
TASK_ATTACH_INTERFACE = "compute.attach_interface"  # InterfaceRequest -> EVENT_INTERFACE_ATTACHED
TASK_DETACH_INTERFACE = "compute.detach_interface"  # InterfaceRequest -> EVENT_INTERFACE_DETACHED
# The data plane (contract 1.6). Each carries the whole wanted state of what it names, so a
# repeated or reordered message converges on the latest: no reply is sent.
TASK_REFRESH_PORTS = "compute.refresh_ports"  # PortsRefresh: security rules, DHCP entries
TASK_SYNC_ROUTER = "compute.sync_router"  # RouterSpec: make the router's namespace match it
TASK_REMOVE_ROUTER = "compute.remove_router"  # RouterSpec (router_id only): remove it


def compute_queue(host: str) -> str:
    return f"{COMPUTE_QUEUE_PREFIX}{host}"


# A host's name becomes a queue name, a worker hostname and part of broker user names and key
# patterns: letters, digits, '.', '_' and '-' only, none of them special in a glob or a URL.
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


# --- Hosts with their own broker credential (contract 1.4; docs/adding-a-host.md)
#
# A host that joined (`python -m compute_agent join`) holds a broker user limited to its own queue
# and to publishing into the conductor's, and a secret of its own. It signs every report with the
# secret, so the conductor can tell which host sent it even where the broker vouches for no
# sender (Redis); on RabbitMQ it also sets the message's user_id, which the broker validates.

SIGNER_HEADER = "kumo_host"
SIGNATURE_HEADER = "kumo_signature"


def report_signature(secret: str, host: str, task_name: str, payload: dict[str, Any]) -> str:
    """HMAC-SHA256 of a report as the host sends it: the task, the signing host and the payload
    in canonical JSON (what a JSON round trip through the broker gives back unchanged)."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    message = f"{task_name}\n{host}\n{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# --- The metadata service (docs/architecture.md, "Guest networking")
#
# A host's metadata proxy forwards a guest's request to the control plane's /metadata/ with the
# network it came in on and its source address, both taken from the socket (never from anything
# the guest sent), signed: with the host's own secret (and its name as signer) when it joined, or
# else with the secret every host of the deployment shares (KUMO_METADATA_SECRET, signer "").
# The timestamp bounds a replay to METADATA_MAX_SKEW seconds.

METADATA_PREFIX = "/metadata"
METADATA_ADDRESS = "169.254.169.254"
METADATA_NETWORK_HEADER = "X-Kumo-Network-Id"
METADATA_ADDRESS_HEADER = "X-Kumo-Source-Address"
METADATA_SIGNER_HEADER = "X-Kumo-Host"
METADATA_TIME_HEADER = "X-Kumo-Timestamp"
METADATA_SIGNATURE_HEADER = "X-Kumo-Signature"
METADATA_MAX_SKEW = 300


def metadata_signature(secret: str, host: str, network_id: str, address: str, path: str,
                       timestamp: str) -> str:
    """HMAC-SHA256 of one forwarded metadata request: who forwards it (a joined host's name, or ""
    for the shared secret), the network and source address it speaks for, the path and when."""
    message = f"metadata\n{host}\n{network_id}\n{address}\n{path}\n{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def redis_unacked_keys(host: str) -> dict[str, str]:
    """The keys where kombu's Redis transport keeps a joined host's unacknowledged messages (its
    transport options of these names). The default keys are one hash shared by every consumer,
    holding every message taken and not yet acknowledged: a host allowed to read them could read
    the others' messages, so each joined host has keys of its own, and its broker user may touch
    only those."""
    queue = compute_queue(host)
    return {
        "unacked_key": f"unacked.{queue}",
        "unacked_index_key": f"unacked_index.{queue}",
        "unacked_mutex_key": f"unacked_mutex.{queue}",
    }


# Power states, named once; the libvirt driver maps libvirt's integers onto these names and the
# API maps them onto Nova's integers.
POWER_NOSTATE = "nostate"
POWER_RUNNING = "running"
POWER_PAUSED = "paused"
POWER_SHUTDOWN = "shutdown"
POWER_CRASHED = "crashed"
POWER_SUSPENDED = "suspended"

# Instance events an agent reports
EVENT_SPAWNED = "spawned"
EVENT_SPAWN_FAILED = "spawn_failed"
EVENT_DESTROYED = "destroyed"
EVENT_STARTED = "started"
EVENT_STOPPED = "stopped"
EVENT_REBOOTED = "rebooted"
EVENT_PAUSED = "paused"
EVENT_UNPAUSED = "unpaused"
EVENT_SUSPENDED = "suspended"
EVENT_RESUMED = "resumed"
EVENT_CONSOLE_OUTPUT = "console_output"  # the text is in InstanceEvent.output
EVENT_SNAPSHOT_UPLOADED = "snapshot_uploaded"  # InstanceEvent.image_id says which image
EVENT_REBUILT = "rebuilt"
EVENT_RESIZED = "resized"
EVENT_ACTION_FAILED = "action_failed"  # InstanceEvent.action names it, .message says why
EVENT_MIGRATION_PREPARED = "migration_prepared"
EVENT_MIGRATION_PROGRESS = "migration_progress"  # InstanceEvent.progress holds the figures
EVENT_LIVE_MIGRATED = "live_migrated"
EVENT_DISK_MIGRATED = "disk_migrated"
EVENT_MIGRATION_FINISHED = "migration_finished"
EVENT_MIGRATION_REVERTED = "migration_reverted"
EVENT_RESCUED = "rescued"
EVENT_UNRESCUED = "unrescued"
EVENT_SHELVED = "shelved"  # InstanceEvent.image_id: the snapshot that received the disk
EVENT_SHELVE_OFFLOADED = "shelve_offloaded"  # nothing of the guest is left on the host
EVENT_UNSHELVED = "unshelved"
EVENT_BACKUP_UPLOADED = "backup_uploaded"  # InstanceEvent.image_id says which image
EVENT_CRASH_DUMP_TRIGGERED = "crash_dump_triggered"
EVENT_INTERFACE_ATTACHED = "interface_attached"  # InstanceEvent.port_id says which port
EVENT_INTERFACE_DETACHED = "interface_detached"

# The `action` of an EVENT_ACTION_FAILED: one word per instance action task.
ACTION_START = "start"
ACTION_STOP = "stop"
ACTION_REBOOT = "reboot"
ACTION_PAUSE = "pause"
ACTION_UNPAUSE = "unpause"
ACTION_SUSPEND = "suspend"
ACTION_RESUME = "resume"
ACTION_CONSOLE_OUTPUT = "console_output"
ACTION_SNAPSHOT = "snapshot"
ACTION_REBUILD = "rebuild"
ACTION_RESIZE = "resize"
ACTION_MIGRATION = "migration"  # any step of a migration; InstanceEvent.migration_id says which
ACTION_RESCUE = "rescue"
ACTION_UNRESCUE = "unrescue"
ACTION_SHELVE = "shelve"
ACTION_SHELVE_OFFLOAD = "shelve_offload"
ACTION_UNSHELVE = "unshelve"
ACTION_BACKUP = "backup"
ACTION_TRIGGER_CRASH_DUMP = "trigger_crash_dump"
ACTION_ATTACH_INTERFACE = "attach_interface"
ACTION_DETACH_INTERFACE = "detach_interface"

REBOOT_SOFT = "SOFT"
REBOOT_HARD = "HARD"

# A graceful stop waits this long for the guest to power off before pulling the plug.
DEFAULT_STOP_TIMEOUT = 60
