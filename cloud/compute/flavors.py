"""Flavor operations behind the Compute API."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from .models import Flavor, FlavorAccess


def usable_by(ctx: RequestContext, qs: QuerySet[Flavor]) -> QuerySet[Flavor]:
    """The flavors of `qs` the caller may see and boot: public ones and the private ones its project
    was given access to; an admin, all of them (as Nova)."""
    if ctx.is_admin:
        return qs
    return qs.filter(Q(is_public=True) | Q(access__project_id=ctx.project_id or "")).distinct()


def usable_flavor(ctx: RequestContext | None, flavorid: str) -> Flavor | None:
    """The flavor with this flavorid if the caller may use it (usable_by's rule; any flavor
    without a caller), else None. Read by its key and the rule applied to the row here, the
    access list asked only for a private flavor: usable_by's join and DISTINCT cost a boot more
    CPU to build than the read itself."""
    flavor = next(iter(Flavor.objects.filter(flavorid=flavorid).order_by()[:1]), None)
    if flavor is None or ctx is None or ctx.is_admin or flavor.is_public:
        return flavor
    if FlavorAccess.objects.filter(flavor=flavor, project_id=ctx.project_id or "").exists():
        return flavor
    return None


def list_flavors(
    ctx: RequestContext,
    *,
    is_public: bool | None,
    min_disk: int | None,
    min_ram: int | None,
    sort_key: str = "flavorid",
    sort_dir: str = "asc",
    name: str | None = None,
) -> QuerySet[Flavor]:
    """Flavors for a list. A member sees the public ones and those shared with the project
    (is_public is not theirs to choose); an admin sees the public ones, the private ones with
    is_public=false, or both with is_public=None."""
    qs = Flavor.objects.filter(disabled=False)
    if not ctx.is_admin:
        qs = usable_by(ctx, qs)
    elif is_public is not None:
        qs = qs.filter(is_public=is_public)
    if name is not None:
        qs = qs.filter(name=name)
    if min_disk is not None:
        qs = qs.filter(root_gb__gte=min_disk)
    if min_ram is not None:
        qs = qs.filter(memory_mb__gte=min_ram)
    # Nova's sort keys; updated_at and vcpu_weight have no column here and order by id.
    fields = {"flavorid": "flavorid", "name": "name", "memory_mb": "memory_mb",
              "vcpus": "vcpus", "root_gb": "root_gb", "id": "id", "created_at": "created_at",
              "description": "description", "disabled": "disabled",
              "ephemeral_gb": "ephemeral_gb", "is_public": "is_public",
              "rxtx_factor": "rxtx_factor", "swap": "swap", "updated_at": "id",
              "vcpu_weight": "id"}
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
    flavor = usable_by(ctx, Flavor.objects.filter(flavorid=flavor_id)).first()
    if flavor is None:
        raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def update_description(flavor: Flavor, description: str | None) -> Flavor:
    """The one thing of a flavor that changes after creation (2.55): servers keep a copy of the
    rest."""
    Flavor.objects.filter(pk=flavor.pk).update(description=description)
    flavor.refresh_from_db()
    return flavor


# --- access to private flavors (os-flavor-access)


def access_list(flavor: Flavor) -> list[str]:
    """The projects given access to a private flavor; 404 for a public one (Nova: there is no
    list, everyone has access)."""
    if flavor.is_public:
        raise errors.NotFound("Access list not available for public flavors.")
    return list(flavor.access.order_by("id").values_list("project_id", flat=True))


def add_access(flavor: Flavor, project_id: str, *, refuse_public: bool = True) -> list[str]:
    """Let `project_id` see and use the flavor; the projects with access after. 409 for a public
    flavor (from 2.7; before, Nova recorded it) and for a project that already has access."""
    if flavor.is_public and refuse_public:
        raise errors.Conflict("Can not add access to a public flavor.")
    try:
        with transaction.atomic():
            FlavorAccess.objects.create(flavor=flavor, project_id=project_id)
    except IntegrityError:
        raise errors.Conflict(
            f"Flavor access already exists for flavor {flavor.flavorid} and project "
            f"{project_id} combination."
        ) from None
    return list(flavor.access.order_by("id").values_list("project_id", flat=True))


def remove_access(flavor: Flavor, project_id: str) -> list[str]:
    deleted, _ = FlavorAccess.objects.filter(flavor=flavor, project_id=project_id).delete()
    if not deleted:
        raise errors.NotFound(
            f"Flavor access not found for {flavor.flavorid} / {project_id} combination."
        )
    return list(flavor.access.order_by("id").values_list("project_id", flat=True))


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
