"""Availability zones: named sets of compute hosts, drawn by aggregates that carry a zone.

A compute host is in the zone of the aggregate holding it (at most one: aggregates.py refuses a
second), or in DEFAULT_ZONE when no zoned aggregate holds it. Control-plane services (scheduler,
conductor) sit in INTERNAL_ZONE, which admins see and no server may ask for. A zone exists while a
service is in it; an aggregate's zone with no hosts is not a zone anyone can use yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from cloud import errors
from cloud.identity.context import RequestContext

from .hosts import service_is_up
from .models import COMPUTE_BINARY, AggregateHost, Service

DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"
NOT_AVAILABLE = "The requested availability zone is not available"


def host_zones(hosts: Iterable[str] | None = None) -> dict[str, str]:
    """host → zone for the hosts a zoned aggregate holds, in one query; others are DEFAULT_ZONE.

    With `hosts`, only those are looked up (a page of servers needs a handful, not all)."""
    qs = AggregateHost.objects.filter(aggregate__availability_zone__isnull=False)
    if hosts is not None:
        hosts = set(hosts)
        if not hosts:
            return {}
        qs = qs.filter(host__in=hosts)
    return dict(qs.values_list("host", "aggregate__availability_zone"))


def zone_of(host: str, zones: dict[str, str]) -> str:
    return zones.get(host, DEFAULT_ZONE)


@dataclass
class ServiceState:
    binary: str
    alive: bool
    enabled: bool
    updated_at: datetime | None


@dataclass
class ZoneInfo:
    name: str
    available: bool
    # host → its enabled services in this zone; empty for a zone that is not available
    hosts: dict[str, list[ServiceState]] = field(default_factory=dict)


def list_zones(*, include_internal: bool = False) -> list[ZoneInfo]:
    """Every zone some service is in: available (an enabled service in it) first, then the zones
    whose services are all disabled, each group by name. Two queries."""
    now = timezone.now()
    zones = host_zones()
    found: dict[str, ZoneInfo] = {}
    for service in Service.objects.order_by("host", "binary"):
        if service.binary == COMPUTE_BINARY:
            name = zone_of(service.host, zones)
        else:
            name = INTERNAL_ZONE
        if name == INTERNAL_ZONE and not include_internal:
            continue
        zone = found.setdefault(name, ZoneInfo(name=name, available=False))
        if service.disabled:
            continue
        zone.available = True
        zone.hosts.setdefault(service.host, []).append(
            ServiceState(
                binary=service.binary,
                alive=service_is_up(service, now),
                enabled=True,
                updated_at=service.last_seen_up,
            )
        )
    return sorted(found.values(), key=lambda z: (not z.available, z.name))


def available_compute_zones() -> set[str]:
    """Zones with at least one enabled compute host: the zones a new server may ask for."""
    zones = host_zones()
    hosts = Service.objects.filter(binary=COMPUTE_BINARY, disabled=False).values_list(
        "host", flat=True
    )
    return {zone_of(host, zones) for host in hosts}


def validate_requested_zone(ctx: RequestContext, zone: str | None) -> str | None:
    """The zone a new server asks for, checked to exist (400 if not); None means any zone."""
    if not zone:
        return None
    if zone not in available_compute_zones():
        raise errors.BadRequest(NOT_AVAILABLE)
    return zone
