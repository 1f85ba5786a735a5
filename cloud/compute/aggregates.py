"""Host aggregates: admin-named sets of compute hosts with metadata, optionally an availability zone.

The one rule that spans aggregates: a host is in at most one availability zone. Every change that
could break it (adding a host, giving an aggregate a zone) locks the aggregate and then the compute
services of the hosts concerned, in host order, before checking, so two concurrent changes cannot
both pass the check.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from cloud import errors

from .availability_zones import INTERNAL_ZONE
from .models import COMPUTE_BINARY, Aggregate, AggregateHost, ComputeNode, Service

ZONE_KEY = "availability_zone"
_UNSET = object()


def _with_hosts(qs: QuerySet[Aggregate]) -> QuerySet[Aggregate]:
    return qs.prefetch_related(Prefetch("hosts", queryset=AggregateHost.objects.order_by("host")))


def list_aggregates() -> list[Aggregate]:
    return list(_with_hosts(Aggregate.objects.order_by("id")))


def get_aggregate(aggregate_id: str | int) -> Aggregate:
    text = str(aggregate_id)
    # Anything but a small positive integer is simply not an aggregate (and must not reach SQL).
    valid = text.isascii() and text.isdigit() and int(text) < 2**31
    aggregate = _with_hosts(Aggregate.objects.filter(pk=int(text))).first() if valid else None
    if aggregate is None:
        raise errors.NotFound(f"Aggregate {aggregate_id} could not be found.")
    return aggregate


def host_names(aggregate: Aggregate) -> list[str]:
    return [h.host for h in aggregate.hosts.all()]


def metadata_of(aggregate: Aggregate) -> dict[str, str]:
    """The metadata as clients read it: the zone is also a metadata key, as in Nova."""
    metadata = dict(aggregate.metadata or {})
    if aggregate.availability_zone:
        metadata[ZONE_KEY] = aggregate.availability_zone
    return metadata


def _check_zone_name(zone: str | None) -> None:
    if zone == INTERNAL_ZONE:
        raise errors.BadRequest(
            f"Aggregates cannot use the '{INTERNAL_ZONE}' availability zone: it holds the "
            "control-plane services."
        )


def _locked(aggregate: Aggregate) -> Aggregate:
    return Aggregate.objects.select_for_update(no_key=True).get(pk=aggregate.pk)


def _lock_hosts(hosts: list[str]) -> None:
    list(
        Service.objects.select_for_update(no_key=True)
        .filter(binary=COMPUTE_BINARY, host__in=hosts)
        .order_by("host")
        .values_list("pk", flat=True)
    )


def _zone_conflicts(hosts: list[str], zone: str | None, aggregate: Aggregate) -> list[str]:
    """The hosts that another aggregate already puts in a zone other than `zone`."""
    if not zone or not hosts:
        return []
    return sorted(
        set(
            AggregateHost.objects.filter(
                host__in=hosts, aggregate__availability_zone__isnull=False
            )
            .exclude(aggregate=aggregate)
            .exclude(aggregate__availability_zone=zone)
            .values_list("host", flat=True)
        )
    )


def _name_taken(name: str, aggregate: Aggregate | None = None) -> bool:
    qs = Aggregate.objects.filter(name=name)
    if aggregate is not None:
        qs = qs.exclude(pk=aggregate.pk)
    return qs.exists()


def create_aggregate(name: str, availability_zone: str | None = None) -> Aggregate:
    _check_zone_name(availability_zone)
    if _name_taken(name):
        raise errors.Conflict(f"Aggregate {name} already exists.")
    try:
        with transaction.atomic():
            return Aggregate.objects.create(name=name, availability_zone=availability_zone or None)
    except IntegrityError:
        raise errors.Conflict(f"Aggregate {name} already exists.") from None


def _set_zone(aggregate: Aggregate, zone: str | None) -> None:
    """Give the (locked) aggregate a zone, unless a host of it is already in another zone."""
    _check_zone_name(zone)
    hosts = list(aggregate.hosts.values_list("host", flat=True))
    _lock_hosts(hosts)
    conflicts = _zone_conflicts(hosts, zone, aggregate)
    if conflicts:
        raise errors.BadRequest(
            f"Cannot update aggregate {aggregate.pk}: host(s) {', '.join(conflicts)} are already "
            "in another availability zone."
        )
    aggregate.availability_zone = zone or None


def update_aggregate(
    aggregate: Aggregate, *, name: object = _UNSET, availability_zone: object = _UNSET
) -> Aggregate:
    """Rename and/or rezone; an argument left out stays as it is, a None zone removes the zone."""
    try:
        with transaction.atomic():
            locked = _locked(aggregate)
            if isinstance(name, str) and name != locked.name:
                if _name_taken(name, locked):
                    raise errors.Conflict(f"Aggregate {name} already exists.")
                locked.name = name
            if availability_zone is None or isinstance(availability_zone, str):
                _set_zone(locked, availability_zone)
            locked.updated_at = timezone.now()
            locked.save(update_fields=["name", "availability_zone", "updated_at"])
    except IntegrityError:
        raise errors.Conflict(f"Aggregate {name} already exists.") from None
    return get_aggregate(aggregate.pk)


def delete_aggregate(aggregate: Aggregate) -> None:
    with transaction.atomic():
        locked = _locked(aggregate)
        if locked.hosts.exists():
            raise errors.BadRequest(
                f"Cannot delete aggregate {locked.pk}: it still has hosts; remove them first."
            )
        locked.delete()


def _compute_host_exists(host: str) -> bool:
    return (
        Service.objects.filter(binary=COMPUTE_BINARY, host=host).exists()
        or ComputeNode.objects.filter(host=host).exists()
    )


def add_host(aggregate: Aggregate, host: str) -> Aggregate:
    with transaction.atomic():
        locked = _locked(aggregate)
        if not _compute_host_exists(host):
            raise errors.NotFound(f"Compute host {host} could not be found.")
        _lock_hosts([host])
        if locked.hosts.filter(host=host).exists():
            raise errors.Conflict(f"Aggregate {locked.pk} already has host {host}.")
        if _zone_conflicts([host], locked.availability_zone, locked):
            raise errors.Conflict(
                f"Cannot add host {host} to aggregate {locked.pk}: the host is already in "
                f"another availability zone than {locked.availability_zone}."
            )
        AggregateHost.objects.create(aggregate=locked, host=host)
        Aggregate.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
    return get_aggregate(aggregate.pk)


def remove_host(aggregate: Aggregate, host: str) -> Aggregate:
    with transaction.atomic():
        locked = _locked(aggregate)
        deleted, _ = AggregateHost.objects.filter(aggregate=locked, host=host).delete()
        if not deleted:
            raise errors.NotFound(f"Cannot remove host {host} from aggregate {locked.pk}: "
                                  "it is not in the aggregate.")
        Aggregate.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
    return get_aggregate(aggregate.pk)


def set_metadata(aggregate: Aggregate, metadata: dict[str, str | None]) -> Aggregate:
    """Merge keys into the metadata; a None value removes its key. The `availability_zone` key
    sets (or, with None, removes) the aggregate's zone."""
    with transaction.atomic():
        locked = _locked(aggregate)
        current = dict(locked.metadata or {})
        for key, value in metadata.items():
            if key == ZONE_KEY:
                continue
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        if ZONE_KEY in metadata:
            _set_zone(locked, metadata[ZONE_KEY])
        locked.metadata = current
        locked.updated_at = timezone.now()
        locked.save(update_fields=["metadata", "availability_zone", "updated_at"])
    return get_aggregate(aggregate.pk)
