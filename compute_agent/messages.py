"""The message contract between the control plane (`cloud`) and the compute agents.

Plain dataclasses, serialised to JSON-safe dicts. Both sides import this module and nothing else of
each other. CONTRACT_VERSION's major part changes only when a field is removed or changes meaning;
receivers ignore fields they do not know, so adding a field is a minor change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Self

CONTRACT_VERSION = "1.8"

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


def _check_version(name: str, data: dict[str, Any]) -> None:
    version = str(data.get("contract_version", CONTRACT_VERSION))
    if version.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
        raise ValueError(f"{name}: contract {version} is not {CONTRACT_VERSION}")


@dataclass
class Message:
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["contract_version"] = CONTRACT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _check_version(cls.__name__, data)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            nested = _NESTED.get((cls.__name__, f.name))
            if nested is not None and value is not None:
                value = (
                    [nested.from_dict(v) for v in value]
                    if isinstance(value, list)
                    else nested.from_dict(value)
                )
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass
class ImageRef(Message):
    id: str
    checksum: str = ""
    disk_format: str = "qcow2"
    size: int = 0
    url: str = ""  # the image API's download URL
    token: str = field(default="", repr=False)  # a scoped token for the download; never logged


@dataclass
class SecurityRule(Message):
    """One allow rule of a port's security groups (everything not allowed is dropped)."""

    direction: str  # "ingress" (towards the guest) or "egress" (from it)
    ethertype: str = "IPv4"  # or "IPv6"
    protocol: str = ""  # "" for any; a name (tcp, udp, icmp, …) or an IP protocol number
    port_min: int | None = None  # tcp/udp: ports; icmp: type (port_min) and code (port_max)
    port_max: int | None = None
    # The peer addresses (CIDRs) the rule admits: sources for ingress, destinations for egress.
    # None is any address. A rule naming a remote group arrives with that group's member
    # addresses already listed, so the agent never looks anything up.
    remote: list[str] | None = None


@dataclass
class SubnetInfo(Message):
    subnet_id: str
    cidr: str
    gateway_ip: str = ""
    enable_dhcp: bool = True
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[dict[str, str]] = field(default_factory=list)  # destination, nexthop


@dataclass
class NetworkInfo(Message):
    """One port: a guest's NIC, or (in a RouterSpec) a leg of a router."""

    network_id: str
    network_name: str
    port_id: str
    mac_address: str
    ip_address: str = ""
    # How the port's network reaches the host (contract 1.6). "user": qemu's user-mode NIC, no
    # data plane (an agent without a network driver, or an old control plane). "vxlan": a tenant
    # network, a bridge on each host joined to the others' by VXLAN `segmentation_id`. "flat": a
    # bridge on the host interface the agent maps `physical_network` to.
    network_type: str = "user"
    segmentation_id: int | None = None
    physical_network: str = ""
    mtu: int = 1450
    subnets: list[SubnetInfo] = field(default_factory=list)
    port_security: bool = True
    # More (ip_address CIDR, mac_address) sources the port may send from.
    allowed_address_pairs: list[dict[str, str]] = field(default_factory=list)
    rules: list[SecurityRule] = field(default_factory=list)
    hostname: str = ""  # the name DHCP hands the guest
    # This host's DHCP server on the network: a port the control plane reserved for it.
    dhcp_ip: str = ""
    dhcp_mac: str = ""
    # The other hosts' tunnel addresses: where a VXLAN network's broadcasts go.
    peers: list[str] = field(default_factory=list)
    # Raised by the control plane each time it tells hosts about the port: a host applies the
    # highest it has seen, so messages handled out of order (a worker's threads) never undo a
    # newer state with an older one.
    revision: int = 0


@dataclass
class PortsRefresh(Message):
    """The current state of some of a host's ports (rules, addresses), and ports it no longer
    carries (`removed`, by port id)."""

    request_id: str
    ports: list[NetworkInfo] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass
class FloatingMapping(Message):
    floating_ip: str
    fixed_ip: str


@dataclass
class RouterSpec(Message):
    """A router as it should be on the host that runs it: its legs (ports with their networks),
    source NAT to the gateway's address, floating IPs, static routes."""

    request_id: str
    router_id: str
    gateway: NetworkInfo | None = None
    interfaces: list[NetworkInfo] = field(default_factory=list)
    snat: bool = True
    floating_ips: list[FloatingMapping] = field(default_factory=list)
    routes: list[dict[str, str]] = field(default_factory=list)  # destination, nexthop
    # As NetworkInfo.revision: a spec older than one applied is ignored. A removal carries
    # REMOVED_REVISION, so no spec sent before it can bring the router back.
    revision: int = 0


REMOVED_REVISION = 2**62


@dataclass
class SpawnRequest(Message):
    request_id: str
    instance_uuid: str
    name: str
    hostname: str
    vcpus: int
    memory_mb: int
    root_gb: int
    image: ImageRef | None = None
    networks: list[NetworkInfo] = field(default_factory=list)
    user_data: str = ""
    key_data: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # For the config drive's meta_data.json (contract 1.1).
    project_id: str = ""
    availability_zone: str = ""
    key_name: str = ""
    launch_index: int = 0
    # An unshelve: the shelve snapshot holding the guest's disk. The root disk is an overlay on
    # it (cached like any image) instead of on `image`.
    restore_from: ImageRef | None = None


@dataclass
class DestroyRequest(Message):
    request_id: str
    instance_uuid: str


@dataclass
class PowerRequest(Message):
    """start, stop, pause, unpause, suspend and resume of one instance."""

    request_id: str
    instance_uuid: str
    timeout: int = DEFAULT_STOP_TIMEOUT  # stop only: seconds of graceful shutdown, then destroy


@dataclass
class RebootRequest(Message):
    request_id: str
    instance_uuid: str
    reboot_type: str = REBOOT_SOFT  # REBOOT_SOFT (ACPI, falls back to HARD) or REBOOT_HARD
    timeout: int = DEFAULT_STOP_TIMEOUT  # SOFT: seconds for the guest to shut down before HARD
    # HARD (contract 1.7): the instance as the control plane knows it, as Nova's hard reboot
    # re-creates the guest from its database. The host plugs its ports again and, when it has no
    # domain for it (a host that lost its domains), defines it anew on the disks it kept.
    spawn: SpawnRequest | None = None


@dataclass
class ConsoleOutputRequest(Message):
    request_id: str
    instance_uuid: str
    length: int | None = None  # the last N lines; None: the whole log (capped by the agent)


@dataclass
class SnapshotRequest(Message):
    """Copy the instance's root disk and PUT it to `upload_url` (the image API's
    /v2/images/<image_id>/file) with `token` as X-Auth-Token; the token is never logged."""

    request_id: str
    instance_uuid: str
    image_id: str
    upload_url: str
    token: str = field(default="", repr=False)
    disk_format: str = "qcow2"
    # TASK_SHELVE: the guest is shut down first (gracefully for stop_timeout seconds), and with
    # `offload` removed from the host once its disk is uploaded.
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    offload: bool = False


@dataclass
class RescueRequest(Message):
    """Boot the instance from a rescue disk made from `image`, its own root disk attached second
    (vdb); or, with `device` and `bus` (the image's hw_rescue_device and hw_rescue_bus), Nova's
    stable device rescue: the instance's disks stay where they are and the rescue disk is added on
    that bus and booted first (refused by Kumo's hosts for now). `spawn` is the instance as it
    normally runs."""

    request_id: str
    instance_uuid: str
    image: ImageRef | None = None
    spawn: SpawnRequest | None = None
    device: str = ""  # "disk" or "cdrom"
    bus: str = ""  # "virtio", "ide", "scsi" or "usb"


@dataclass
class InterfaceRequest(Message):
    """Plug in or unplug one port. `networks` are all the NICs the instance is to have afterwards:
    the host makes the domain's match them (by MAC), so a repeated request finds the work done."""

    request_id: str
    instance_uuid: str
    port_id: str = ""
    networks: list[NetworkInfo] = field(default_factory=list)


@dataclass
class MigrationRequest(Message):
    """One step of moving an instance from `source_host` to `dest_host` (see TASK_*_MIGRATION)."""

    request_id: str
    instance_uuid: str
    migration_id: str
    source_host: str = ""
    dest_host: str = ""
    # The destination's libvirt as the source reaches it (HostReport.migration_uri), for the
    # live copy and for sending the disk of a cold migration.
    dest_uri: str = ""
    live: bool = True
    # The instance as it is to be on the destination: its image (fetched there first, so that
    # only the disk's own layer travels), networks, config drive, and for a resize its new sizes.
    spawn: SpawnRequest | None = None
    stop_timeout: int = DEFAULT_STOP_TIMEOUT  # cold: seconds of graceful shutdown first
    # Finish: whether the guest runs on the destination. A guest that was stopped when its cold
    # move began stays stopped, as in Nova.
    power_on: bool = True


@dataclass
class DomainState(Message):
    uuid: str
    power_state: str
    # The VNC port of a running domain, read from its live XML (contract 1.2); -1 when it has
    # none (not running, or a hypervisor without a VNC server, such as libvirt's test driver).
    vnc_port: int = -1
    # The unix socket its VNC server listens on instead of a port, where the host puts them
    # there (contract 1.3; simulated hosts, whose network namespace the console relay cannot
    # reach).
    vnc_socket: str = ""


@dataclass
class HostReport(Message):
    """A compute agent's heartbeat: who it is, what the hypervisor has, which domains exist."""

    host: str
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str
    host_ip: str
    vcpus: int
    memory_mb: int
    local_gb: int
    cpu_info: dict[str, Any] = field(default_factory=dict)
    domains: list[DomainState] = field(default_factory=list)
    # How another host's libvirt reaches this one for a migration (contract 1.3); "" when this host
    # cannot take migrations (libvirt's test driver).
    migration_uri: str = ""
    # When the host booted (epoch seconds) and its 1/5/15-minute load averages, from /proc
    # (contract 1.5): Nova's hypervisor uptime. 0.0 and []: unknown.
    boot_time: float = 0.0
    load_average: list[float] = field(default_factory=list)
    # The host's data plane (contract 1.6): "linuxbridge" carries tenant networks; "user" (or ""
    # from an older agent) gives guests qemu's user-mode NICs only.
    network_driver: str = ""


@dataclass
class DiskStats(Message):
    """One disk of a guest, as counted since its qemu started."""

    name: str  # the guest's device name (vda, sda…)
    read_bytes: int = 0
    read_requests: int = 0
    write_bytes: int = 0
    write_requests: int = 0
    errors: int | None = None  # None: the hypervisor does not count them


@dataclass
class NicStats(Message):
    """One NIC of a guest since its qemu started, counted as the guest sees it (libvirt turns a
    tap's counters round): rx is what the guest received, tx what it sent."""

    name: str  # the host's device (tap…); "" when the NIC has none (a user-mode NIC)
    mac_address: str = ""
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_drops: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_drops: int = 0


@dataclass
class GuestStats(Message):
    """One guest's counters at one moment (libvirt's domain stats). Counters only ever grow while
    the same qemu runs; a smaller value than before means the guest started again."""

    uuid: str
    power_state: str
    cpu_time_ns: int = 0  # every vCPU and qemu's own threads, since qemu started
    vcpus: int = 0
    vcpu_times_ns: list[int] = field(default_factory=list)  # per vCPU; [] when not told
    memory_max_kib: int = 0  # what the guest may have (the balloon's maximum)
    memory_kib: int = 0  # what it has now (the balloon's current size)
    memory_rss_kib: int | None = None  # host memory qemu uses for it; None when not told
    # The guest's own view, from its balloon driver's statistics; None when it does not report.
    memory_unused_kib: int | None = None
    memory_usable_kib: int | None = None
    disks: list[DiskStats] = field(default_factory=list)
    nics: list[NicStats] = field(default_factory=list)


@dataclass
class GuestStatsReport(Message):
    """A host's guests' counters, collected at `collected_at` (epoch seconds, the host's clock);
    the next report follows about `interval` seconds later."""

    host: str
    collected_at: float
    interval: float
    guests: list[GuestStats] = field(default_factory=list)

    # Hundreds of guests every few seconds: built and parsed field by field, without
    # dataclasses.asdict's deep copies and the generic walk (about 10× and 3× faster for 250
    # guests; bench/guest_stats_bench.py). Same dicts as Message's own.
    def to_dict(self) -> dict[str, Any]:
        data = _flat(self)
        data["guests"] = [
            {**_flat(g), "vcpu_times_ns": list(g.vcpu_times_ns),
             "disks": [_flat(d) for d in g.disks], "nics": [_flat(n) for n in g.nics]}
            for g in self.guests
        ]
        data["contract_version"] = CONTRACT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _check_version(cls.__name__, data)
        guests = []
        for g in data.get("guests") or []:
            stats = GuestStats(**_known(GuestStats, g))
            stats.disks = [DiskStats(**_known(DiskStats, d)) for d in g.get("disks") or []]
            stats.nics = [NicStats(**_known(NicStats, n)) for n in g.get("nics") or []]
            guests.append(stats)
        report = cls(**_known(cls, data))
        report.guests = guests
        return report


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _flat(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep (its lists and nested objects as they are)."""
    return {name: getattr(obj, name) for name in _names(type(obj))}


_NESTED_FIELDS = frozenset({"guests", "disks", "nics"})


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of `data` that are fields of `cls` (unknown ones are a newer sender's),
    nested lists left for the caller."""
    return {k: data[k] for k in _names(cls) if k in data and k not in _NESTED_FIELDS}


@dataclass
class InstanceEvent(Message):
    request_id: str
    instance_uuid: str
    host: str
    event: str
    power_state: str = POWER_NOSTATE
    message: str = ""
    details: str = ""
    action: str = ""  # EVENT_ACTION_FAILED: which ACTION_* failed
    output: str = ""  # EVENT_CONSOLE_OUTPUT: the console log's tail
    image_id: str = ""  # EVENT_SNAPSHOT_UPLOADED: the image that received the data
    migration_id: str = ""  # the migration a migration event belongs to (contract 1.3)
    # EVENT_MIGRATION_PROGRESS: memory_total, memory_processed, memory_remaining, disk_total,
    # disk_processed, disk_remaining (bytes), as libvirt's job info gives them.
    progress: dict[str, int] = field(default_factory=dict)
    port_id: str = ""  # EVENT_INTERFACE_*: the port plugged in or out


_NESTED: dict[tuple[str, str], type[Message]] = {
    ("SpawnRequest", "image"): ImageRef,
    ("SpawnRequest", "networks"): NetworkInfo,
    ("MigrationRequest", "spawn"): SpawnRequest,
    ("HostReport", "domains"): DomainState,
    ("SpawnRequest", "restore_from"): ImageRef,
    ("RescueRequest", "image"): ImageRef,
    ("RescueRequest", "spawn"): SpawnRequest,
    ("RebootRequest", "spawn"): SpawnRequest,
    ("InterfaceRequest", "networks"): NetworkInfo,
    ("NetworkInfo", "subnets"): SubnetInfo,
    ("NetworkInfo", "rules"): SecurityRule,
    ("PortsRefresh", "ports"): NetworkInfo,
    ("RouterSpec", "gateway"): NetworkInfo,
    ("RouterSpec", "interfaces"): NetworkInfo,
    ("RouterSpec", "floating_ips"): FloatingMapping,
    ("GuestStats", "disks"): DiskStats,
    ("GuestStats", "nics"): NicStats,
    ("GuestStatsReport", "guests"): GuestStats,
}
