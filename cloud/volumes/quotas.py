"""Cinder's quotas: volumes, snapshots, gigabytes (volumes' and snapshots' sizes together, as
Cinder counts them), per_volume_gigabytes, backups, backup_gigabytes and groups, and per volume
type volumes_<type>, gigabytes_<type> and snapshots_<type> (unlimited unless set).

A project's own limits are identity Quota rows named "volume:<resource>" (the compute quotas'
table). `check` locks the project row inside the caller's transaction before it counts, so two
concurrent creates in one project take turns, as the compute and network quotas do. Going over a
limit is Cinder's 413 overLimit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Count, Sum

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.identity.models import Project, Quota

from . import common
from .models import Volume, VolumeSnapshot, VolumeType

UNLIMITED = -1
PREFIX = "volume:"

# Cinder's stock defaults.
DEFAULT_QUOTA = {
    "volumes": 10,
    "snapshots": 10,
    "gigabytes": 1000,
    "per_volume_gigabytes": UNLIMITED,
    "backups": 10,
    "backup_gigabytes": 1000,
    "groups": 10,
}
PER_TYPE = ("volumes", "gigabytes", "snapshots")


class OverQuota(errors.KumoError):
    """Cinder's QuotaError family: 413 with the body key overLimit."""

    status = 413
    compute_key = "overLimit"


def _type_names() -> list[str]:
    return list(VolumeType.objects.order_by("name").values_list("name", flat=True))


def defaults() -> dict[str, int]:
    values = dict(DEFAULT_QUOTA)
    for name in _type_names():
        for resource in PER_TYPE:
            values[f"{resource}_{name}"] = UNLIMITED
    return values


def limits_for(project_id: str) -> dict[str, int]:
    limits = defaults()
    rows = Quota.objects.filter(project_id=project_id, resource__startswith=PREFIX)
    for resource, hard_limit in rows.values_list("resource", "hard_limit"):
        name = resource.removeprefix(PREFIX)
        if name in limits:
            limits[name] = hard_limit
    return limits


def usage(project_id: str) -> dict[str, int]:
    """What the project holds now: every row counts, whatever its status, until it is gone."""
    used = dict.fromkeys(defaults(), 0)
    volumes = Volume.objects.filter(project_id=project_id)
    snapshots = VolumeSnapshot.objects.filter(project_id=project_id)
    for type_name, count, size in (volumes.order_by().values_list("volume_type__name")
                                   .annotate(Count("id"), Sum("size"))):
        used["volumes"] += count
        used["gigabytes"] += size or 0
        if type_name:
            used[f"volumes_{type_name}"] = count
            used[f"gigabytes_{type_name}"] = used.get(f"gigabytes_{type_name}", 0) + (size or 0)
    for type_name, count, size in (snapshots.order_by().values_list("volume__volume_type__name")
                                   .annotate(Count("id"), Sum("size"))):
        used["snapshots"] += count
        used["gigabytes"] += size or 0
        if type_name:
            used[f"snapshots_{type_name}"] = count
            used[f"gigabytes_{type_name}"] = used.get(f"gigabytes_{type_name}", 0) + (size or 0)
    return used


def check(project_id: Any, *, type_name: str = "", volumes: int = 0, snapshots: int = 0,
          gigabytes: int = 0, volume_size: int | None = None) -> None:
    """Refuse (413) what would take the project over a limit. Call inside the transaction that
    creates (or grows) the rows: it locks the project row first, so concurrent requests of one
    project are counted one after the other."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quotas.check must run inside the creating transaction")
    Project.objects.select_for_update().filter(pk=project_id).first()
    limits = limits_for(str(project_id))
    per_volume = limits["per_volume_gigabytes"]
    if volume_size is not None and per_volume != UNLIMITED and volume_size > per_volume:
        raise OverQuota(f"Requested volume size {volume_size}G is larger than maximum allowed "
                        f"limit {per_volume}G.")
    used = usage(str(project_id))
    wanted = {"volumes": volumes, "snapshots": snapshots, "gigabytes": gigabytes}
    for resource, amount in wanted.items():
        if amount <= 0:
            continue
        for key in (resource, f"{resource}_{type_name}" if type_name else ""):
            if not key or key not in limits:
                continue
            limit = limits[key]
            if limit == UNLIMITED or used.get(key, 0) + amount <= limit:
                continue
            if resource == "gigabytes":
                raise OverQuota(
                    f"Requested volume or snapshot exceeds allowed {key} quota. Requested "
                    f"{amount}G, quota is {limit}G and {used.get(key, 0)}G has been consumed.")
            noun = "volumes" if resource == "volumes" else "snapshots"
            raise OverQuota(f"Maximum number of {noun} allowed ({limit}) exceeded for quota "
                            f"'{key}'.")


# --- the os-quota-sets API


def _check_project(ctx: RequestContext, project_id: str) -> None:
    common.authorize(ctx, "volume:quotas:show")
    if not ctx.is_admin and project_id != ctx.project_id:
        raise errors.Forbidden("Policy doesn't allow volume_extension:quotas:show to be "
                               "performed.")


def get_quota(ctx: RequestContext, project_id: str) -> dict[str, int]:
    _check_project(ctx, project_id)
    return limits_for(project_id)


def get_usage(ctx: RequestContext, project_id: str) -> dict[str, dict[str, int]]:
    _check_project(ctx, project_id)
    used = usage(project_id)
    return {name: {"limit": limit, "in_use": used.get(name, 0), "reserved": 0}
            for name, limit in limits_for(project_id).items()}


def get_defaults(ctx: RequestContext, project_id: str) -> dict[str, int]:
    _check_project(ctx, project_id)
    return defaults()


def update_quota(ctx: RequestContext, project_id: str, values: Any, *,
                 validate: bool = False) -> dict[str, int]:
    """An admin's new limits. As Cinder, a limit below what the project already uses is taken
    unless `validate` (its skip_validation=false) asks for the check."""
    common.authorize(ctx, "volume:quotas:update")
    if not isinstance(values, Mapping) or not values:
        raise errors.BadRequest("Missing required element 'quota_set' in request body.")
    if not Project.objects.filter(pk=project_id).exists():
        raise errors.NotFound(f"Project {project_id} could not be found.")
    known = defaults()
    limits: dict[str, int] = {}
    used = usage(project_id)
    for name, value in values.items():
        if name in ("tenant_id", "id"):
            continue
        if name not in known:
            raise errors.BadRequest(f"Bad key(s) in quota set: {name}")
        try:
            limit = int(str(value).strip())
        except ValueError:
            raise errors.BadRequest(f"Quota limit {value} for {name} must be an integer.") from None
        if limit < UNLIMITED or limit > common.MAX_INT:
            raise errors.BadRequest(f"Quota limit must be -1 or greater (got {limit} for "
                                    f"{name}).")
        if (validate and limit != UNLIMITED and name != "per_volume_gigabytes"
                and used.get(name, 0) > limit):
            raise errors.BadRequest(
                f"Quota limit {limit} for {name} must be greater than or equal to already used "
                f"and reserved {used.get(name, 0)}.")
        limits[name] = limit
    with transaction.atomic():
        for name, limit in limits.items():
            Quota.objects.update_or_create(project_id=project_id, resource=PREFIX + name,
                                           defaults={"hard_limit": limit})
    return limits_for(project_id)


def reset_quota(ctx: RequestContext, project_id: str) -> None:
    """Back to the defaults: the project's own volume limits are dropped."""
    common.authorize(ctx, "volume:quotas:update")
    Quota.objects.filter(project_id=project_id, resource__startswith=PREFIX).delete()
