"""The shortlist: the few hosts worth trying for one request, found by one SQL query.

What Placement's allocation-candidates query does for Nova: the database keeps only the hosts with
room for the request (and enabled, alive, not already tried, in the asked-for zone …) and, when the
weighers' order can be written in SQL, returns only the best SHORTLIST_SIZE of them in that order.
A decision then reads a few dozen narrow rows instead of every host's whole record, so its cost
hardly grows with the number of hosts.

The shortlist only narrows: every configured filter and weigher still runs in Python over the rows
it returns, so the filters stay the one statement of each rule. Each SQL condition below is the
filter's rule or a looser one, never stricter, so no host a filter would pass is left out of an
unlimited shortlist; and the SQL order is the order `order_hosts` gives, so the first host of a
limited shortlist that passes every filter is the first host the full list would give. A filter or
weigher this module does not know (by its class, so a subclass with another rule is not mistaken
for its parent) has no SQL part: a filter then runs in Python only, and a weigher means no limit.
When no host of the shortlist can be claimed, the scheduler falls back to every host
(manager.py), which also says why none fits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from cloud.compute import availability_zones
from cloud.compute.models import Aggregate, AggregateHost, ComputeNode, Service
from cloud.compute.server_groups import AFFINITY, SOFT_AFFINITY, SOFT_ANTI_AFFINITY

from .filters import HostFilter, applies, image_properties
from .filters.alive import ComputeAliveFilter
from .filters.availability_zone import AvailabilityZoneFilter
from .filters.disk import DiskFilter
from .filters.enabled import ComputeEnabledFilter
from .filters.image_properties import ImagePropertiesFilter
from .filters.ram import RamFilter
from .filters.requested_destination import RequestedDestinationFilter
from .filters.retry import RetryFilter
from .filters.server_group_affinity import ServerGroupAffinityFilter
from .filters.vcpu import VcpuFilter
from .host_state import HOST_COLUMNS, HostState, RequestSpec, host_state_from_row
from .weighers import HostWeigher
from .weighers.ram import FreeRamWeigher
from .weighers.server_group_soft_affinity import ServerGroupSoftAffinityWeigher
from .weighers.server_group_soft_anti_affinity import ServerGroupSoftAntiAffinityWeigher

# Enough that the schedulers racing for the same best hosts still find one left, few enough to
# read in well under a millisecond.
SHORTLIST_SIZE = 32


# The tables, as the models name them; the query is written out rather than built by the ORM
# because building it cost more CPU than running it (2 ms against 0.3 ms), on every decision.
_NODE = ComputeNode._meta.db_table
_SERVICE = Service._meta.db_table
_AGGREGATE = Aggregate._meta.db_table
_AGGREGATE_HOST = AggregateHost._meta.db_table

# The same arithmetic as HostState.free_* and the claim's WHERE: capacity × ratio − used.
FREE = {
    "free_vcpus": "(n.vcpus * n.cpu_allocation_ratio - n.vcpus_used)",
    "free_ram_mb": "(n.memory_mb * n.ram_allocation_ratio - n.memory_mb_used)",
    "free_disk_gb": "(n.local_gb * n.disk_allocation_ratio - n.local_gb_used)",
}

# A condition: SQL over n (the node) and s (its service), and its parameters.
Where = tuple[str, list[Any]]


def _alive(spec: RequestSpec, now: datetime) -> Where:
    # A second looser than the filter's rule, so rounding never drops a host it would pass.
    oldest = now - timedelta(seconds=settings.KUMO_SERVICE_DOWN_TIME + 1)
    return ("NOT s.forced_down AND s.last_seen_up >= %s",
            [connection.ops.adapt_datetimefield_value(oldest)])


_ZONED_HOSTS = (f"SELECT ah.host FROM {_AGGREGATE_HOST} ah JOIN {_AGGREGATE} a "
                "ON a.id = ah.aggregate_id WHERE a.availability_zone IS NOT NULL")


def _zone(spec: RequestSpec, now: datetime) -> Where | None:
    if not spec.availability_zone:
        return None
    if spec.availability_zone == availability_zones.DEFAULT_ZONE:
        return f"n.host NOT IN ({_ZONED_HOSTS})", []
    return f"n.host IN ({_ZONED_HOSTS} AND a.availability_zone = %s)", [spec.availability_zone]


def _destination(spec: RequestSpec, now: datetime) -> Where | None:
    conditions, params = [], []
    if spec.requested_host:
        conditions.append("n.host = %s")
        params.append(spec.requested_host)
    if spec.requested_node:
        conditions.append("n.hypervisor_hostname = %s")
        params.append(spec.requested_node)
    return (" AND ".join(conditions), params) if conditions else None


def _hosts_in(column: str, hosts: set[str], negate: bool = False) -> Where:
    marks = ", ".join(["%s"] * len(hosts))
    return f"{column} {'NOT IN' if negate else 'IN'} ({marks})", sorted(hosts)


def _retry(spec: RequestSpec, now: datetime) -> Where | None:
    return _hosts_in("n.host", set(spec.ignore_hosts), negate=True) if spec.ignore_hosts else None


def _host_kind(spec: RequestSpec, now: datetime) -> Where:
    # The kind of host only (the architecture, when both sides give one, is left to Python: a
    # looser condition). Both ways, so that in a cloud of both kinds a shortlist is never filled
    # with hosts of the other kind; a kind no host can be (xen) keeps none, as the filter would.
    wanted = image_properties.host_kind_wanted(spec)
    if wanted == image_properties.LXC:
        return "UPPER(n.hypervisor_type) = 'LXC'", []
    if wanted == image_properties.QEMU:
        # Agents report libvirt's own spelling; another spelling of lxc is left for the filter to
        # remove (looser), so that the common request costs no function call per host.
        return "n.hypervisor_type <> 'LXC'", []
    return "1 = 0", []


def _affinity(spec: RequestSpec, now: datetime) -> Where | None:
    if spec.group_policy != AFFINITY or not spec.group_hosts:
        return None
    return _hosts_in("n.host", set(spec.group_hosts))


# Each known filter's rule (or a looser one) as a WHERE condition; None: nothing to add for this
# request, so a request that uses no zone, group or destination pays for none of them.
WHERE: dict[type, Callable[[RequestSpec, datetime], Where | None]] = {
    ComputeEnabledFilter: lambda spec, now: ("NOT s.disabled", []),
    ComputeAliveFilter: _alive,
    RamFilter: lambda spec, now: (f"{FREE['free_ram_mb']} >= %s", [spec.memory_mb]),
    VcpuFilter: lambda spec, now: (f"{FREE['free_vcpus']} >= %s", [spec.vcpus]),
    DiskFilter: lambda spec, now: (f"{FREE['free_disk_gb']} >= %s", [spec.disk_gb]),
    RetryFilter: _retry,
    RequestedDestinationFilter: _destination,
    AvailabilityZoneFilter: _zone,
    ServerGroupAffinityFilter: _affinity,
    ImagePropertiesFilter: _host_kind,
}

# Weighers that score every host alike unless the request is in a group with their policy.
_GROUP_WEIGHERS = {
    ServerGroupSoftAffinityWeigher: SOFT_AFFINITY,
    ServerGroupSoftAntiAffinityWeigher: SOFT_ANTI_AFFINITY,
}
# Weighers whose score is a column of the query, so their order is an ORDER BY.
_SCORE_COLUMN: dict[type, str] = {FreeRamWeigher: "free_ram_mb"}


def sql_order(weighers: list[HostWeigher], spec: RequestSpec) -> list[str] | None:
    """The ORDER BY that gives `order_hosts`' order for this request, or None when the weighers'
    order cannot be written so (an unknown weigher, two that both score, a group's soft policy).

    `order_hosts` scales each score to 0..1 over the candidates, a change that keeps their order,
    so one scoring weigher orders hosts by its raw score (reversed by a negative multiplier); ties,
    and no scoring weigher at all, go to the host name."""
    scoring: list[str] = []
    for weigher in weighers:
        kind = type(weigher)
        if kind in _GROUP_WEIGHERS:
            if spec.group_policy == _GROUP_WEIGHERS[kind]:
                return None
            continue
        column = _SCORE_COLUMN.get(kind)
        if column is None:
            return None
        if weigher.multiplier > 0:
            scoring.append(f"{FREE[column]} DESC")
        elif weigher.multiplier < 0:
            scoring.append(f"{FREE[column]} ASC")
    if len(scoring) > 1:
        return None
    return [*scoring, "n.host"]


def load_candidates(filters: list[HostFilter], weighers: list[HostWeigher], spec: RequestSpec,
                    now: datetime, *, limit: int | None = None) -> list[HostState]:
    """The hosts worth trying, in one query: those that pass every known filter's SQL condition,
    the best `limit` (default SHORTLIST_SIZE) of them when the weighers' order is SQL's, else all
    of them. Filters and weighers have not run over them yet."""
    conditions, params = ["1 = 1"], []
    for host_filter in filters:
        condition = WHERE.get(type(host_filter))
        found = condition(spec, now) if condition and applies(host_filter, spec) else None
        if found is not None:
            conditions.append(f"({found[0]})")
            params.extend(found[1])
    # A host's CPU architecture is read only for an image that names one: taking it out of each
    # row's cpu_info costs every host of the scan, and None is what a host that does not say
    # gets (the filter then holds it to no architecture, which this request asks none of).
    select = _SELECT if image_properties.arch_wanted(spec) else _SELECT_NO_ARCH
    sql = (
        f"SELECT {select}, ({_ZONE_OF_NODE}) "
        f"FROM {_NODE} n JOIN {_SERVICE} s ON s.id = n.service_id "
        f"WHERE {' AND '.join(conditions)}"
    )
    order = sql_order(weighers, spec)
    if order is not None:
        sql += f" ORDER BY {', '.join(order)} LIMIT {limit or SHORTLIST_SIZE:d}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [host_state_from_row(_typed(row), now) for row in rows]


# HOST_COLUMNS, as columns of n and s.
_COLUMNS = [
    "n.id", "n.host", "n.hypervisor_hostname", "n.vcpus", "n.memory_mb", "n.local_gb",
    "n.vcpus_used", "n.memory_mb_used", "n.local_gb_used", "n.cpu_allocation_ratio",
    "n.ram_allocation_ratio", "n.disk_allocation_ratio", "s.disabled", "s.forced_down",
    "s.last_seen_up", "n.hypervisor_type", "n.cpu_info ->> 'arch'",
]
assert len(_COLUMNS) == len(HOST_COLUMNS)
_SELECT = ", ".join(_COLUMNS)
_SELECT_NO_ARCH = ", ".join([*_COLUMNS[:-1], "NULL"])
_ZONE_OF_NODE = (f"SELECT a.availability_zone FROM {_AGGREGATE_HOST} ah JOIN {_AGGREGATE} a "
                 "ON a.id = ah.aggregate_id WHERE ah.host = n.host "
                 "AND a.availability_zone IS NOT NULL LIMIT 1")


def _typed(row: tuple) -> tuple:
    # What the ORM's converters would do: SQLite hands back its booleans as 0/1 and its
    # timestamps without their zone (they are stored in UTC).
    *head, disabled, forced_down, last_seen_up, hv_type, arch, zone = row
    if last_seen_up is not None and timezone.is_naive(last_seen_up):
        last_seen_up = timezone.make_aware(last_seen_up, UTC)
    return (*head, bool(disabled), bool(forced_down), last_seen_up, hv_type, arch, zone)
