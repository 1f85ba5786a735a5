"""Neutron's quotas: a limit per project and resource (network, subnet, port, router, floatingip,
security_group, security_group_rule), usage counted from the rows that exist.

A project's own limits are identity Quota rows named "network:<resource>" (the compute quotas'
table, under names Nova never uses). `check` locks the project row inside the caller's transaction
before it counts, so two concurrent creates in one project take turns, as the compute quotas do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.identity.models import Project, Quota

from . import common
from .models import FloatingIp, Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet

UNLIMITED = -1
MAX_LIMIT = 2**31 - 1
PREFIX = "network:"

# Neutron's stock defaults.
DEFAULT_QUOTA = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
    "subnetpool": -1,
}

_COUNTED: dict[str, Callable[[], QuerySet]] = {
    "network": Network.objects.all,
    "subnet": Subnet.objects.all,
    "port": Port.objects.all,
    "router": Router.objects.all,
    "floatingip": FloatingIp.objects.all,
    "security_group": SecurityGroup.objects.all,
    "security_group_rule": SecurityGroupRule.objects.all,
}


def _check_project(ctx: RequestContext, project_id: str) -> None:
    common.authorize_read(ctx)
    if not ctx.is_admin and project_id != ctx.project_id:
        raise errors.Forbidden("Only admin is authorized to access quotas for another project.")


def limits_for(project_id: str) -> dict[str, int]:
    limits = dict(DEFAULT_QUOTA)
    rows = Quota.objects.filter(project_id=project_id, resource__startswith=PREFIX)
    for resource, hard_limit in rows.values_list("resource", "hard_limit"):
        name = resource.removeprefix(PREFIX)
        if name in limits:
            limits[name] = hard_limit
    return limits


def usage(project_id: str) -> dict[str, int]:
    return {name: rows().filter(project_id=project_id).count() for name, rows in _COUNTED.items()}


def check(project_id: str | None, resource: str, wanted: int = 1) -> None:
    """Neutron's OverQuota (409) when `wanted` more of `resource` would pass the project's limit.
    Call inside the transaction that creates the rows."""
    if not project_id:
        return
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project_id).first()
        limit = limits_for(project_id)[resource]
        if limit == UNLIMITED:
            return
        used = _COUNTED[resource]().filter(project_id=project_id).count()
        if used + wanted > limit:
            raise errors.Conflict(f"Quota exceeded for resources: ['{resource}'].",
                                  neutron_type="OverQuota")


def get_quota(ctx: RequestContext, project_id: str) -> dict[str, int]:
    _check_project(ctx, project_id)
    return limits_for(project_id)


def get_defaults(ctx: RequestContext, project_id: str) -> dict[str, int]:
    _check_project(ctx, project_id)
    return dict(DEFAULT_QUOTA)


def get_quota_details(ctx: RequestContext, project_id: str) -> dict[str, dict[str, int]]:
    _check_project(ctx, project_id)
    used = usage(project_id)
    return {
        name: {"limit": limit, "used": used.get(name, 0), "reserved": 0}
        for name, limit in limits_for(project_id).items()
    }


def list_quotas(ctx: RequestContext) -> list[dict]:
    """Neutron's GET /quotas: the projects that have limits of their own (admins)."""
    common.authorize(ctx, "get_quota", "network:quotas:update")
    projects = (Quota.objects.filter(resource__startswith=PREFIX)
                .values_list("project_id", flat=True).distinct())
    return [{**limits_for(pid), "project_id": pid, "tenant_id": pid} for pid in sorted(projects)]


def update_quota(ctx: RequestContext, project_id: str, values: object) -> dict[str, int]:
    common.authorize(ctx, "update_quota", "network:quotas:update")
    if not isinstance(values, Mapping) or not values:
        raise errors.BadRequest("Invalid input: the body must name the quotas to change.")
    if not Project.objects.filter(pk=project_id).exists():
        raise errors.BadRequest(f"Project {project_id} could not be found.")
    limits: dict[str, int] = {}
    for name, value in values.items():
        if name not in DEFAULT_QUOTA:
            raise errors.BadRequest(f"Unrecognized attribute(s) '{name}'")
        limits[name] = common.integer(value, name, UNLIMITED, MAX_LIMIT)
    with transaction.atomic():
        for name, limit in limits.items():
            Quota.objects.update_or_create(
                project_id=project_id, resource=PREFIX + name, defaults={"hard_limit": limit}
            )
    return limits_for(project_id)


def reset_quota(ctx: RequestContext, project_id: str) -> None:
    """Back to the defaults: the project's own network limits are dropped."""
    common.authorize(ctx, "delete_quota", "network:quotas:delete")
    Quota.objects.filter(project_id=project_id, resource__startswith=PREFIX).delete()
