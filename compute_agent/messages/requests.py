"""What the control plane asks of a host: spawn, destroy and the instance actions, moves, ports and
routers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compute_agent.messages.base import _NESTED, Message
from compute_agent.messages.names import DEFAULT_STOP_TIMEOUT, REBOOT_SOFT

__all__ = [
    "REMOVED_REVISION",
    "ConsoleOutputRequest",
    "DestroyRequest",
    "FloatingMapping",
    "ImageRef",
    "InterfaceRequest",
    "MigrationRequest",
    "NetworkInfo",
    "PortsRefresh",
    "PowerRequest",
    "RebootRequest",
    "RescueRequest",
    "RouterSpec",
    "SecurityRule",
    "SnapshotRequest",
    "SpawnRequest",
    "SubnetInfo",
]


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
class BlockDevice(Message):
    """A volume as a guest's disk: a SpawnRequest's block_devices, or one attach or detach
    (compute_agent/messages/volumes.py, contract 1.9)."""

    volume_id: str
    device: str  # the guest's device name: vda for a boot volume, vdb… for the others
    connection: dict[str, Any] = field(default_factory=dict)
    boot_index: int = -1  # 0: the guest boots from it (it replaces the local root disk)
    bus: str = "virtio"


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
    # Volumes as the guest's disks (contract 1.9), in device order. One with boot_index 0 is the
    # root disk: the guest then has no local root disk, and `image` is only its description.
    block_devices: list[BlockDevice] = field(default_factory=list)


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


_NESTED.update({
    ("SpawnRequest", "image"): ImageRef,
    ("SpawnRequest", "networks"): NetworkInfo,
    ("MigrationRequest", "spawn"): SpawnRequest,
    ("SpawnRequest", "restore_from"): ImageRef,
    ("SpawnRequest", "block_devices"): BlockDevice,
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
})
