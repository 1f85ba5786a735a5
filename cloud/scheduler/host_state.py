"""What the scheduler knows: a snapshot of every compute host and what one boot asks for.

Plain dataclasses, so filters and weighers are pure functions of them and test without a database.
The snapshot may be stale by the time a host is chosen; the claim re-checks capacity in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from cloud.compute import availability_zones, server_groups, states
from cloud.compute.models import ComputeNode, Instance
from cloud.compute.spawn import joined_image
from cloud.ids import parse_uuid
from cloud.images.models import Image


@dataclass
class HostState:
    host: str
    node: str
    node_id: int
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    cpu_allocation_ratio: float = 1.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    disabled: bool = False
    forced_down: bool = False
    last_seen_up: datetime | None = None
    # When the snapshot was read: heartbeat age is measured against it, so filters need no clock.
    read_at: datetime | None = None
    availability_zone: str = availability_zones.DEFAULT_ZONE
    # As the host's agent reports them: libvirt's driver (QEMU, LXC, …) and its CPU's architecture
    # (cpu_info's arch: x86_64, aarch64, …); None: not reported (filters/image_properties.py).
    hypervisor_type: str | None = None
    cpu_arch: str | None = None

    @property
    def free_vcpus(self) -> float:
        return self.vcpus * self.cpu_allocation_ratio - self.vcpus_used

    @property
    def free_ram_mb(self) -> float:
        return self.memory_mb * self.ram_allocation_ratio - self.memory_mb_used

    @property
    def free_disk_gb(self) -> float:
        return self.local_gb * self.disk_allocation_ratio - self.local_gb_used


@dataclass
class RequestSpec:
    instance_uuid: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    availability_zone: str | None = None
    scheduler_hints: dict = field(default_factory=dict)
    ignore_hosts: frozenset[str] = frozenset()
    # The instance's server group, if any: its policy, rules, and the hosts of its other live
    # members (one entry per member, so a host holding two appears twice).
    group_policy: str | None = None
    group_rules: dict = field(default_factory=dict)
    group_hosts: tuple[str, ...] = ()
    # Where an admin asked a new server to be built (host and/or node); forced: the other
    # filters are skipped (Nova's "zone:host:node"), otherwise they still run (2.74).
    requested_host: str | None = None
    requested_node: str | None = None
    force_destination: bool = False
    # The image booted (empty: a volume) and its properties as the request was made (Glance's,
    # of which ImagePropertiesFilter reads hypervisor_type, hw_architecture, hw_vm_mode); None
    # and {} alike: the image asks for nothing, a virtual machine's disk.
    image_ref: str = ""
    image_properties: dict | None = None

    @property
    def disk_gb(self) -> int:
        return self.root_gb + self.ephemeral_gb

    def with_group(self, placement: server_groups.Placement | None) -> RequestSpec:
        if placement is None:
            return replace(self, group_policy=None, group_rules={}, group_hosts=())
        return replace(
            self,
            group_policy=placement.policy,
            group_rules=dict(placement.rules),
            group_hosts=placement.hosts,
        )


def request_spec_for(instance: Instance) -> RequestSpec:
    spec = RequestSpec(
        instance_uuid=str(instance.uuid),
        vcpus=instance.vcpus,
        memory_mb=instance.memory_mb,
        root_gb=instance.root_gb,
        ephemeral_gb=instance.ephemeral_gb,
        availability_zone=instance.availability_zone,
        scheduler_hints=dict(instance.scheduler_hints or {}),
        ignore_hosts=frozenset(instance.tried_hosts or ()),
        image_ref=instance.image_ref,
        image_properties=_image_properties(instance),
    )
    if instance.vm_state == states.BUILDING:
        # A requested destination is for the boot only; moves choose their own.
        spec = replace(spec, requested_host=instance.requested_host,
                       requested_node=instance.requested_node,
                       force_destination=instance.force_destination)
    return spec.with_group(_placement(instance))


def _image_properties(instance: Instance) -> dict:
    # Taken from the image the instance was read with, when its read joined it (the scheduler's:
    # spawn.image_join); otherwise one query by the image's key. A deleted image, like a volume
    # boot, asks for nothing.
    known, image = joined_image(instance)
    if known:
        return dict(image.properties or {}) if image is not None else {}
    if not instance.image_ref:
        return {}
    ref = parse_uuid(instance.image_ref)
    if ref is None:
        return {}
    found = Image.objects.filter(pk=ref).values_list("properties", flat=True).first()
    return dict(found or {})


def _placement(instance: Instance) -> server_groups.Placement | None:
    # The scheduler reads the instance together with its group membership (one join), so a
    # server in no group, most of them, costs no query here; membership is fixed at boot.
    try:
        instance.group_member  # noqa: B018 - read for its DoesNotExist
    except ObjectDoesNotExist:
        return None
    return server_groups.placement_for(str(instance.uuid))


# What a decision reads of a compute node and its service, in this order: narrow on purpose (a
# node's row also holds its CPU description and the list of its domains, which no filter reads).
HOST_COLUMNS = (
    "pk", "host", "hypervisor_hostname", "vcpus", "memory_mb", "local_gb", "vcpus_used",
    "memory_mb_used", "local_gb_used", "cpu_allocation_ratio", "ram_allocation_ratio",
    "disk_allocation_ratio", "service__disabled", "service__forced_down", "service__last_seen_up",
    "hypervisor_type", "cpu_info__arch",
)


def host_state_from_row(row: tuple, read_at: datetime) -> HostState:
    """A HostState from HOST_COLUMNS' values followed by the host's zone (None: the default)."""
    (node_id, host, node, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used,
     cpu_ratio, ram_ratio, disk_ratio, disabled, forced_down, last_seen_up, hv_type, arch,
     zone) = row
    return HostState(
        host=host, node=node, node_id=node_id, vcpus=vcpus, memory_mb=memory_mb,
        local_gb=local_gb, vcpus_used=vcpus_used, memory_mb_used=memory_mb_used,
        local_gb_used=local_gb_used, cpu_allocation_ratio=cpu_ratio,
        ram_allocation_ratio=ram_ratio, disk_allocation_ratio=disk_ratio, disabled=disabled,
        forced_down=forced_down, last_seen_up=last_seen_up, read_at=read_at,
        availability_zone=zone or availability_zones.DEFAULT_ZONE,
        hypervisor_type=hv_type or None, cpu_arch=str(arch) if arch else None,
    )


def load_host_states(now: datetime | None = None) -> list[HostState]:
    """Every compute node with its service and its zone, in two queries, ordered by host name.

    A decision reads the shortlist instead (prefilter.py); this is for when it must look at every
    host: to say why none fits, and for moves."""
    read_at = now or timezone.now()
    zones = availability_zones.host_zones()
    rows = ComputeNode.objects.order_by("host").values_list(*HOST_COLUMNS)
    return [host_state_from_row((*row, zones.get(row[1])), read_at) for row in rows]
