"""Flavor operations behind the Compute API."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from .models import Flavor


def list_flavors(
    ctx: RequestContext,
    *,
    is_public: bool | None,
    min_disk: int | None,
    min_ram: int | None,
    sort_key: str = "flavorid",
    sort_dir: str = "asc",
) -> QuerySet[Flavor]:
    qs = Flavor.objects.filter(disabled=False)
    if not ctx.is_admin:
        qs = qs.filter(is_public=True)
    elif is_public is not None:
        qs = qs.filter(is_public=is_public)
    if min_disk is not None:
        qs = qs.filter(root_gb__gte=min_disk)
    if min_ram is not None:
        qs = qs.filter(memory_mb__gte=min_ram)
    fields = {"flavorid": "flavorid", "name": "name", "memory_mb": "memory_mb",
              "vcpus": "vcpus", "root_gb": "root_gb", "id": "id", "created_at": "created_at"}
    if sort_key not in fields or sort_dir not in ("asc", "desc"):
        raise errors.BadRequest(f"Invalid sort key or direction: {sort_key} {sort_dir}")
    prefix = "-" if sort_dir == "desc" else ""
    return qs.order_by(prefix + fields[sort_key], prefix + "id")


def page(qs: QuerySet[Flavor], marker: str | None, limit: int | None) -> list[Flavor]:
    items = list(qs)
    if marker is not None:
        ids = [f.flavorid for f in items]
        if marker not in ids:
            raise errors.BadRequest(f"marker [{marker}] not found")
        items = items[ids.index(marker) + 1 :]
    if limit is not None:
        items = items[:limit]
    return items


def get_flavor(ctx: RequestContext, flavor_id: str) -> Flavor:
    flavor = Flavor.objects.filter(flavorid=flavor_id).first()
    if flavor is None or (not flavor.is_public and not ctx.is_admin):
        raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def create_flavor(
    *,
    name: str,
    ram: int,
    vcpus: int,
    disk: int,
    flavorid: str | None,
    swap: int = 0,
    ephemeral: int = 0,
    rxtx_factor: float = 1.0,
    is_public: bool = True,
    description: str | None = None,
) -> Flavor:
    flavorid = flavorid or str(uuid.uuid4())
    if Flavor.objects.filter(Q(flavorid=flavorid) | Q(name=name)).exists():
        raise errors.Conflict(f"Flavor with name {name} or ID {flavorid} already exists.")
    try:
        with transaction.atomic():
            return Flavor.objects.create(
                flavorid=flavorid,
                name=name,
                memory_mb=ram,
                vcpus=vcpus,
                root_gb=disk,
                swap=swap,
                ephemeral_gb=ephemeral,
                rxtx_factor=rxtx_factor,
                is_public=is_public,
                description=description,
            )
    except IntegrityError:
        raise errors.Conflict(f"Flavor with name {name} or ID {flavorid} already exists.") from None


def delete_flavor(flavor: Flavor) -> None:
    # Servers keep the flavor they booted with (Instance.flavor_snapshot), so deleting is safe.
    flavor.delete()


def set_extra_specs(flavor: Flavor, specs: dict[str, str]) -> dict[str, str]:
    """Merge `specs` into the flavor's extra specs; all of them after."""
    with transaction.atomic():
        row = Flavor.objects.select_for_update(no_key=True).get(pk=flavor.pk)
        row.extra_specs = {**row.extra_specs, **specs}
        row.save(update_fields=["extra_specs"])
    return row.extra_specs


def get_extra_spec(flavor: Flavor, key: str) -> str:
    if key not in flavor.extra_specs:
        raise errors.NotFound(f"Flavor {flavor.flavorid} has no extra specs with key {key}.")
    return flavor.extra_specs[key]


def delete_extra_spec(flavor: Flavor, key: str) -> None:
    with transaction.atomic():
        row = Flavor.objects.select_for_update(no_key=True).get(pk=flavor.pk)
        if key not in row.extra_specs:
            raise errors.NotFound(f"Flavor {flavor.flavorid} has no extra specs with key {key}.")
        del row.extra_specs[key]
        row.save(update_fields=["extra_specs"])
