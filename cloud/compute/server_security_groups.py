"""A server's security groups: named at boot, added and removed later (addSecurityGroup,
removeSecurityGroup), listed with their rules (os-security-groups).

Kumo's network API knows one group per project, "default" (cloud/network/networks.py); it is
recorded here by name on the instance. Enforcing the rules on the server's ports is the network's
job and comes with it. As in Nova, groups live on ports: a server without a port has none to add.
"""

from __future__ import annotations

from django.db import transaction

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.network import networks
from cloud.network.models import Port

from .models import Instance
from .transitions import locked_row, write

DEFAULT_GROUP = "default"


def _group_name(project_id: str, name_or_id: str) -> str | None:
    """The name of the project's group that `name_or_id` names (by name or id), or None."""
    default = networks.default_security_group(project_id)
    if name_or_id in (default["name"], default["id"]):
        return default["name"]
    return None


def _not_found(name: str, project_id: str) -> errors.NotFound:
    return errors.NotFound(f"Security group {name} is not found for project {project_id}")


def requested_groups(ctx: RequestContext, requested: list[str] | None) -> list[str]:
    """The groups a new server gets: those it names (400 for one the project does not have), or
    the project's default group."""
    if not requested:
        return [DEFAULT_GROUP]
    chosen: list[str] = []
    for name in requested:
        found = _group_name(ctx.project_id or "", name)
        if found is None:
            raise errors.BadRequest(f"Security group {name} not found.")
        if found not in chosen:
            chosen.append(found)
    return chosen


def _has_ports(instance: Instance) -> bool:
    return Port.objects.filter(device_id=str(instance.uuid)).exists()


def _checked_group(instance: Instance, name: str) -> str:
    """The project's group `name` as recorded, for a server that has ports (Nova's 404s)."""
    found = _group_name(instance.project_id, name)
    if found is None:
        raise _not_found(name, instance.project_id)
    if not _has_ports(instance):
        raise errors.NotFound(
            f"instance_id {instance.uuid} could not be found as device id on any ports")
    return found


def add_group(ctx: RequestContext, instance: Instance, name: str) -> None:
    """Record `name` on the server; a group it already has is left as it is."""
    found = _checked_group(instance, name)
    with transaction.atomic():
        row = locked_row(instance)
        groups = list(row.security_groups or [])
        if found not in groups:
            write(row, security_groups=[*groups, found])


def remove_group(ctx: RequestContext, instance: Instance, name: str) -> None:
    found = _checked_group(instance, name)
    with transaction.atomic():
        row = locked_row(instance)
        groups = list(row.security_groups or [])
        if found not in groups:
            raise errors.NotFound(
                f"Security group {name} not associated with the instance {row.uuid}")
        write(row, security_groups=[g for g in groups if g != found])


def groups_of(instance: Instance) -> list[dict]:
    """The server's groups as the network API describes them (with their rules)."""
    if not _has_ports(instance):
        return []
    default = networks.default_security_group(instance.project_id)
    return [default for name in (instance.security_groups or []) if name == default["name"]]
