"""Reading hypervisors (compute nodes) for os-hypervisors: pages of them, a name search, and the
servers each one runs. Their records are kept by compute/hosts.py from the hosts' reports."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors
from cloud.ids import parse_uuid

from .hosts import list_nodes
from .models import MAX_LIST_LIMIT, ComputeNode, Instance


def page(*, limit: int | None, marker: str | None, by_uuid: bool) -> list[ComputeNode]:
    """Nodes in id order, after the one `marker` names (its uuid from 2.53, its id before)."""
    qs: QuerySet[ComputeNode] = list_nodes().order_by("id")
    if marker is not None:
        found = None
        if by_uuid and parse_uuid(marker) is not None:
            found = qs.filter(uuid=parse_uuid(marker)).first()
        elif not by_uuid and marker.isdigit():
            found = qs.filter(pk=int(marker)).first()
        if found is None:
            raise errors.BadRequest(f"marker [{marker}] not found")
        qs = qs.filter(id__gt=found.id)
    limit = MAX_LIST_LIMIT if limit is None else min(limit, MAX_LIST_LIMIT)
    return list(qs[:limit])


def matching(pattern: str) -> list[ComputeNode]:
    """Nodes whose hypervisor hostname contains `pattern`; 404 when none does (Nova's answer)."""
    nodes = list(list_nodes(pattern).order_by("id"))
    if not nodes:
        raise errors.NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return nodes


def servers_by_host(hosts: list[str]) -> dict[str, list[tuple[str, str]]]:
    """host → (uuid, instance name) of the live servers placed there, in one query."""
    found: dict[str, list[tuple[str, str]]] = {host: [] for host in hosts}
    rows = (Instance.objects.filter(host__in=hosts, deleted=False)
            .order_by("created_at", "uuid").values_list("host", "uuid"))
    for host, uuid in rows:
        found[host].append((str(uuid), f"instance-{uuid}"))
    return found


def servers_on(host: str) -> list[Instance]:
    """The live servers placed on `host`."""
    return list(Instance.objects.filter(host=host, deleted=False).order_by("created_at"))


def uptime_line(node: ComputeNode, now: datetime | None = None) -> str | None:
    """The host's uptime as Nova's libvirt driver gives it, the `uptime` command's line
    (" 08:15:33 up 3 days,  2:05,  load average: 0.10, 0.20, 0.30"), composed from the boot time
    and load averages the host last reported; the time of day is UTC and the count of logged-in
    users, which hosts do not report, is left out. None while the host has not reported them."""
    if node.booted_at is None or len(node.load_average) != 3:
        return None
    now = now or timezone.now()
    minutes = max(0, int((now - node.booted_at).total_seconds()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    up = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    up += f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    load = ", ".join(f"{value:.2f}" for value in node.load_average)
    return f" {now.astimezone(UTC):%H:%M:%S} up {up},  load average: {load}"
