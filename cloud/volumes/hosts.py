"""Volume hosts: their reports, where a new volume goes, and the hosts as Cinder's os-services
(binary cinder-volume) and availability zones show them.

A host is up while its last report is younger than KUMO_SERVICE_DOWN_TIME, as compute services
are. Placement is one small function: the up, enabled hosts of the volume's zone, the one with the
most room once what its volumes still being created will take is counted, so a burst of creates
does not all land on the host that looked emptiest before any of them began.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from cloud import errors
from cloud.identity.context import RequestContext
from compute_agent import messages as msg

from . import common, statuses
from .models import Volume, VolumeHost

BINARY = "cinder-volume"
# Volumes that take room the host's last report may not show yet.
_PENDING = (statuses.CREATING, statuses.DOWNLOADING, statuses.EXTENDING)


def record_report(report: msg.VolumeHostReport) -> VolumeHost:
    """A volume host's heartbeat: create or refresh its row (an admin's disable stays)."""
    host, _ = VolumeHost.objects.update_or_create(
        name=report.host,
        defaults={
            "backend": report.backend,
            "availability_zone": report.availability_zone or "nova",
            "total_gb": max(report.total_gb, 0),
            "free_gb": max(report.free_gb, 0),
            "last_seen": timezone.now(),
        },
    )
    return host


def _cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.KUMO_SERVICE_DOWN_TIME)


def is_up(host: VolumeHost) -> bool:
    return host.last_seen is not None and host.last_seen >= _cutoff()


def pick_host(size_gb: int, availability_zone: str) -> VolumeHost | None:
    """The host a new volume of `size_gb` goes to, or None when no host of the zone has room."""
    hosts = list(VolumeHost.objects.filter(disabled=False, last_seen__gte=_cutoff(),
                                           availability_zone=availability_zone))
    if not hosts:
        return None
    pending = dict(
        Volume.objects.filter(host__in=hosts, status__in=_PENDING).order_by()
        .values_list("host_id").annotate(Sum("size")))
    best, room = None, -1
    for host in hosts:
        free = host.free_gb - (pending.get(host.pk) or 0)
        if free >= size_gb and free > room:
            best, room = host, free
    return best


def host_string(host: VolumeHost | None) -> str | None:
    """Cinder's os-vol-host-attr:host, host@backend#pool."""
    if host is None:
        return None
    return f"{host.name}@{host.backend}#{host.backend}"


# --- os-services and os-availability-zone


def list_services(ctx: RequestContext, query: Mapping[str, str]) -> list[dict[str, Any]]:
    common.authorize(ctx, "volume:services")
    binary = query.get("binary")
    if binary and binary != BINARY:
        return []
    rows = VolumeHost.objects.all()
    if query.get("host"):
        rows = rows.filter(name=query["host"].split("@")[0])
    return [_service(host) for host in rows]


def _service(host: VolumeHost) -> dict[str, Any]:
    return {
        "binary": BINARY,
        "host": f"{host.name}@{host.backend}",
        "zone": host.availability_zone,
        "status": "disabled" if host.disabled else "enabled",
        "state": "up" if is_up(host) else "down",
        "updated_at": host.last_seen,
        "disabled_reason": host.disabled_reason or None,
    }


def set_service(ctx: RequestContext, action: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """os-services/enable, disable, disable-log-reason: whether a host takes new volumes."""
    common.authorize(ctx, "volume:services")
    if action not in ("enable", "disable", "disable-log-reason"):
        raise errors.NotFound(f"Unknown action {action}.")
    name = str(body.get("host") or "").split("@")[0]
    host = VolumeHost.objects.filter(name=name).first()
    if host is None:
        raise errors.NotFound(f"Host {body.get('host')} could not be found.")
    host.disabled = action != "enable"
    host.disabled_reason = (common.text(body.get("disabled_reason"), "disabled_reason")
                            if action == "disable-log-reason" else "")
    host.save(update_fields=["disabled", "disabled_reason", "updated_at"])
    return _service(host)


def availability_zones(ctx: RequestContext) -> list[dict[str, Any]]:
    common.authorize(ctx, "volume:availability_zones")
    zones: dict[str, bool] = {}
    for host in VolumeHost.objects.all():
        zone = host.availability_zone
        zones[zone] = zones.get(zone, False) or (is_up(host) and not host.disabled)
    if not zones:
        zones["nova"] = False
    return [{"zoneName": name, "zoneState": {"available": up}} for name, up in sorted(zones.items())]
