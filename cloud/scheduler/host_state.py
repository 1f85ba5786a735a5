"""What the scheduler knows: a snapshot of every compute host and what one boot asks for.

Plain dataclasses, so filters and weighers are pure functions of them and test without a database.
The snapshot may be stale by the time a host is chosen; the claim re-checks capacity in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.utils import timezone

from cloud.compute import availability_zones, server_groups, states
from cloud.compute.models import ComputeNode, Instance


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
    )
    if instance.vm_state == states.BUILDING:
        # A requested destination is for the boot only; moves choose their own.
        spec = replace(spec, requested_host=instance.requested_host,
                       requested_node=instance.requested_node,
                       force_destination=instance.force_destination)
    return spec.with_group(server_groups.placement_for(str(instance.uuid)))


def load_host_states(now: datetime | None = None) -> list[HostState]:
    """Every compute node with its service and its zone, in two queries, ordered by host name."""
    read_at = now or timezone.now()
    zones = availability_zones.host_zones()
    nodes = ComputeNode.objects.select_related("service").order_by("host")
    return [
        HostState(
            host=node.host,
            node=node.hypervisor_hostname,
            node_id=node.pk,
            vcpus=node.vcpus,
            memory_mb=node.memory_mb,
            local_gb=node.local_gb,
            vcpus_used=node.vcpus_used,
            memory_mb_used=node.memory_mb_used,
            local_gb_used=node.local_gb_used,
            cpu_allocation_ratio=node.cpu_allocation_ratio,
            ram_allocation_ratio=node.ram_allocation_ratio,
            disk_allocation_ratio=node.disk_allocation_ratio,
            disabled=node.service.disabled,
            forced_down=node.service.forced_down,
            last_seen_up=node.service.last_seen_up,
            read_at=read_at,
            availability_zone=availability_zones.zone_of(node.host, zones),
        )
        for node in nodes
    ]
