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
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import ExpressionWrapper, F, FloatField, OuterRef, Q, Subquery

from cloud.compute import availability_zones
from cloud.compute.models import AggregateHost, ComputeNode
from cloud.compute.server_groups import AFFINITY, SOFT_AFFINITY, SOFT_ANTI_AFFINITY

from .filters import HostFilter, applies
from .filters.alive import ComputeAliveFilter
from .filters.availability_zone import AvailabilityZoneFilter
from .filters.disk import DiskFilter
from .filters.enabled import ComputeEnabledFilter
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


def _free(total: str, ratio: str, used: str) -> ExpressionWrapper:
    # The same arithmetic as HostState.free_* and the claim's WHERE: capacity × ratio − used.
    return ExpressionWrapper(F(total) * F(ratio) - F(used), output_field=FloatField())


FREE = {
    "free_vcpus": _free("vcpus", "cpu_allocation_ratio", "vcpus_used"),
    "free_ram_mb": _free("memory_mb", "ram_allocation_ratio", "memory_mb_used"),
    "free_disk_gb": _free("local_gb", "disk_allocation_ratio", "local_gb_used"),
}


def _alive(spec: RequestSpec, now: datetime) -> Q:
    # A second looser than the filter's rule, so rounding never drops a host it would pass.
    oldest = now - timedelta(seconds=settings.KUMO_SERVICE_DOWN_TIME + 1)
    return Q(service__forced_down=False, service__last_seen_up__gte=oldest)


def _zone(spec: RequestSpec, now: datetime) -> Q | None:
    if not spec.availability_zone:
        return None
    zoned = AggregateHost.objects.filter(aggregate__availability_zone__isnull=False)
    if spec.availability_zone == availability_zones.DEFAULT_ZONE:
        return ~Q(host__in=zoned.values("host"))
    return Q(host__in=zoned.filter(
        aggregate__availability_zone=spec.availability_zone).values("host"))


def _destination(spec: RequestSpec, now: datetime) -> Q | None:
    where = Q()
    if spec.requested_host:
        where &= Q(host=spec.requested_host)
    if spec.requested_node:
        where &= Q(hypervisor_hostname=spec.requested_node)
    return where or None


def _affinity(spec: RequestSpec, now: datetime) -> Q | None:
    if spec.group_policy != AFFINITY or not spec.group_hosts:
        return None
    return Q(host__in=set(spec.group_hosts))


# Each known filter's rule (or a looser one) as a WHERE condition; None: nothing to add for this
# request, so a request that uses no zone, group or destination pays for none of them.
WHERE: dict[type, Callable[[RequestSpec, datetime], Q | None]] = {
    ComputeEnabledFilter: lambda spec, now: Q(service__disabled=False),
    ComputeAliveFilter: _alive,
    RamFilter: lambda spec, now: Q(free_ram_mb__gte=spec.memory_mb),
    VcpuFilter: lambda spec, now: Q(free_vcpus__gte=spec.vcpus),
    DiskFilter: lambda spec, now: Q(free_disk_gb__gte=spec.disk_gb),
    RetryFilter: lambda spec, now: ~Q(host__in=spec.ignore_hosts) if spec.ignore_hosts else None,
    RequestedDestinationFilter: _destination,
    AvailabilityZoneFilter: _zone,
    ServerGroupAffinityFilter: _affinity,
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
            scoring.append(f"-{column}")
        elif weigher.multiplier < 0:
            scoring.append(column)
    if len(scoring) > 1:
        return None
    return [*scoring, "host"]


def load_candidates(filters: list[HostFilter], weighers: list[HostWeigher], spec: RequestSpec,
              now: datetime) -> list[HostState]:
    """The hosts worth trying, in one query: those that pass every known filter's SQL condition,
    the best SHORTLIST_SIZE of them when the weighers' order is SQL's, else all of them. Filters
    and weighers have not run over them yet."""
    where = Q()
    for host_filter in filters:
        condition = WHERE.get(type(host_filter))
        if condition is not None and applies(host_filter, spec):
            where &= condition(spec, now) or Q()
    zone = AggregateHost.objects.filter(
        host=OuterRef("host"), aggregate__availability_zone__isnull=False
    ).values("aggregate__availability_zone")[:1]
    rows = (
        ComputeNode.objects.alias(**FREE)
        .filter(where)
        .annotate(zone=Subquery(zone))
        .values_list(*HOST_COLUMNS, "zone")
    )
    order = sql_order(weighers, spec)
    if order is not None:
        rows = rows.order_by(*order)[:SHORTLIST_SIZE]
    return [host_state_from_row(row, now) for row in rows]

