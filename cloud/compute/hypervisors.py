"""Reading hypervisors (compute nodes) for os-hypervisors: pages of them, a name search, and the
servers each one runs. Their records are kept by compute/hosts.py from the hosts' reports."""

from __future__ import annotations

from django.db.models import QuerySet

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
