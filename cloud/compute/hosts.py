"""Hosts: the service records (Nova's os-services) and hypervisors, as processes report them and
admins see and manage them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from cloud import errors
from cloud.ids import parse_uuid

from .models import COMPUTE_BINARY, ComputeNode, Service

# What Nova's host_status says about the compute service of a server's host (2.16+).
HOST_UP = "UP"
HOST_DOWN = "DOWN"  # an admin forced it down
HOST_MAINTENANCE = "MAINTENANCE"  # up, but disabled
HOST_UNKNOWN = "UNKNOWN"  # no recent heartbeat: the host may be dead, or cut off


def heartbeat_fresh(last_seen_up: datetime | None, forced_down: bool, now: datetime) -> bool:
    """The one liveness rule: not forced down, and a heartbeat within KUMO_SERVICE_DOWN_TIME."""
    if forced_down or last_seen_up is None:
        return False
    return (now - last_seen_up).total_seconds() <= settings.KUMO_SERVICE_DOWN_TIME


def service_is_up(service: Service, now: datetime | None = None) -> bool:
    return heartbeat_fresh(service.last_seen_up, service.forced_down, now or timezone.now())


def host_status(service: Service | None, now: datetime | None = None) -> str:
    """Nova's host_status of a compute service: DOWN when forced down, UNKNOWN when it stopped
    reporting, MAINTENANCE when disabled, else UP; "" without a service."""
    if service is None:
        return ""
    if service.forced_down:
        return HOST_DOWN
    if not service_is_up(service, now):
        return HOST_UNKNOWN
    return HOST_MAINTENANCE if service.disabled else HOST_UP


def compute_service(host: str) -> Service | None:
    return Service.objects.filter(host=host, binary=COMPUTE_BINARY).first()


def host_is_up(host: str) -> bool:
    """Whether the compute host answers: its agent's heartbeats are fresh and nobody forced it
    down. What its guests can be asked to do depends on this."""
    service = compute_service(host)
    return service is not None and service_is_up(service)


def list_services(binary: str | None = None, host: str | None = None) -> QuerySet[Service]:
    qs = Service.objects.all()
    if binary:
        qs = qs.filter(binary=binary)
    if host:
        qs = qs.filter(host=host)
    return qs


def _by_uuid_or_number(qs: QuerySet, ident: str) -> Any:
    # From microversion 2.53 services and hypervisors are named by UUID, before by integer id.
    parsed = parse_uuid(ident)
    if parsed is not None:
        return qs.filter(uuid=parsed).first()
    return qs.filter(pk=int(ident)).first() if str(ident).isdigit() else None


def find_service(service_id: str) -> Service:
    service = _by_uuid_or_number(Service.objects.all(), service_id)
    if service is None:
        raise errors.NotFound(f"Service {service_id} not found.")
    return service


def update_service(
    service: Service,
    *,
    status: str | None = None,
    disabled_reason: str | None = None,
    forced_down: bool | None = None,
) -> Service:
    if status is not None:
        service.disabled = status == "disabled"
        service.disabled_reason = disabled_reason if service.disabled else None
    if forced_down is not None:
        service.forced_down = forced_down
    service.save(update_fields=["disabled", "disabled_reason", "forced_down", "updated_at"])
    return service


def delete_service(service: Service) -> None:
    if service.binary == COMPUTE_BINARY:
        node = ComputeNode.objects.filter(service=service).first()
        if node is not None and node.allocations.exists():
            raise errors.Conflict(
                f"Compute service {service.host} still has instances; delete them first."
            )
    service.delete()


def list_nodes(hostname_pattern: str | None = None) -> QuerySet[ComputeNode]:
    qs = ComputeNode.objects.select_related("service")
    if hostname_pattern:
        qs = qs.filter(hypervisor_hostname__icontains=hostname_pattern)
    return qs


def find_node(node_id: str) -> ComputeNode:
    node = _by_uuid_or_number(ComputeNode.objects.select_related("service"), node_id)
    if node is None:
        raise errors.NotFound(f"Hypervisor {node_id} could not be found.")
    return node


def statistics() -> dict:
    nodes = list(ComputeNode.objects.all())
    total = {
        "count": len(nodes),
        "vcpus": sum(n.vcpus for n in nodes),
        "vcpus_used": sum(n.vcpus_used for n in nodes),
        "memory_mb": sum(n.memory_mb for n in nodes),
        "memory_mb_used": sum(n.memory_mb_used for n in nodes),
        "local_gb": sum(n.local_gb for n in nodes),
        "local_gb_used": sum(n.local_gb_used for n in nodes),
        "running_vms": sum(n.running_vms for n in nodes),
        "current_workload": 0,
    }
    total["free_ram_mb"] = total["memory_mb"] - total["memory_mb_used"]
    total["free_disk_gb"] = total["local_gb"] - total["local_gb_used"]
    total["disk_available_least"] = total["free_disk_gb"]
    return total


def record_heartbeat(host: str, binary: str, topic: str = "") -> Service:
    """Upsert the (host, binary) service row: seen up now, one more report."""
    now = timezone.now()
    beat = {"last_seen_up": now, "report_count": F("report_count") + 1, "updated_at": now}
    if not Service.objects.filter(host=host, binary=binary).update(**beat):
        try:
            with transaction.atomic():
                return Service.objects.create(
                    host=host, binary=binary, topic=topic, last_seen_up=now, report_count=1
                )
        except IntegrityError:
            # Another process created it between our UPDATE and INSERT: count this beat on it.
            Service.objects.filter(host=host, binary=binary).update(**beat)
    return Service.objects.get(host=host, binary=binary)
