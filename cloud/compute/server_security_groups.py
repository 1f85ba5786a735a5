"""A server's security groups: named at boot, added and removed later (addSecurityGroup,
removeSecurityGroup), listed with their rules (os-security-groups).

As in Nova with Neutron, groups live on ports: the server records the names it asked for (what
`server show` lists), and each of its ports carries the groups themselves, whose rules the hosts'
data planes enforce. A change is announced to the data plane (cloud.network.dataplane), which
re-sends the rules of every port it affects. A server without a port has none to add.
"""

from __future__ import annotations

from django.db import transaction

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.network import dataplane, security_groups
from cloud.network.models import Port, SecurityGroup

from .models import Instance
from .transitions import locked_row, write

DEFAULT_GROUP = "default"


def _find(project_id: str, name_or_id: str) -> SecurityGroup | None:
    try:
        return security_groups.find_groups(project_id, [name_or_id])[0]
    except errors.KumoError:
        return None


def _not_found(name: str, project_id: str) -> errors.NotFound:
    return errors.NotFound(f"Security group {name} is not found for project {project_id}")


def requested_groups(ctx: RequestContext, requested: list[str] | None) -> list[str]:
    """The groups a new server gets, by name: those it names (400 for one the project does not
    have), or the project's default group."""
    if not requested:
        return [DEFAULT_GROUP]
    chosen: list[str] = []
    for name in requested:
        found = _find(ctx.project_id or "", name)
        if found is None:
            raise errors.BadRequest(f"Security group {name} not found.")
        if found.name not in chosen:
            chosen.append(found.name)
    return chosen


def groups_for_port(instance: Instance) -> list[SecurityGroup]:
    """The groups a new port of the server carries: those the server names."""
    project_id = str(instance.project_id)
    found = []
    for name in instance.security_groups or [DEFAULT_GROUP]:
        group = security_groups.default_group(project_id) if name == DEFAULT_GROUP else \
            _find(project_id, name)
        if group is not None:
            found.append(group)
    return found


def apply_to_port(instance: Instance, port: Port) -> None:
    """Give a port made for the server (at boot or attach) the server's groups."""
    if port.port_security_enabled:
        groups = groups_for_port(instance)
        port.security_groups.set(groups)
        dataplane.notify_groups([str(g.id) for g in groups])


def _ports(instance: Instance) -> list[Port]:
    return list(Port.objects.filter(device_id=str(instance.uuid)))


def _checked_group(instance: Instance, name: str) -> SecurityGroup:
    """The project's group `name`, for a server that has ports (Nova's 404s)."""
    found = _find(str(instance.project_id), name)
    if found is None:
        raise _not_found(name, instance.project_id)
    if not _ports(instance):
        raise errors.NotFound(
            f"instance_id {instance.uuid} could not be found as device id on any ports")
    return found


def add_group(ctx: RequestContext, instance: Instance, name: str) -> None:
    """Add the group to the server and its ports; a group it already has is left as it is."""
    found = _checked_group(instance, name)
    with transaction.atomic():
        row = locked_row(instance)
        groups = list(row.security_groups or [])
        if found.name not in groups:
            write(row, security_groups=[*groups, found.name])
        for port in _ports(row):
            if port.port_security_enabled:
                port.security_groups.add(found)
        dataplane.notify_groups([str(found.id)])


def remove_group(ctx: RequestContext, instance: Instance, name: str) -> None:
    found = _checked_group(instance, name)
    with transaction.atomic():
        row = locked_row(instance)
        groups = list(row.security_groups or [])
        on_ports = [p for p in _ports(row) if p.security_groups.filter(pk=found.pk).exists()]
        if found.name not in groups and not on_ports:
            raise errors.NotFound(
                f"Security group {name} not associated with the instance {row.uuid}")
        write(row, security_groups=[g for g in groups if g != found.name])
        for port in on_ports:
            port.security_groups.remove(found)
        # The group's members changed (rules naming it as remote group change too), and the
        # ports that left it need their rules again: notify both.
        dataplane.notify_groups([str(found.id)])
        dataplane.notify_ports([str(p.id) for p in on_ports])


def groups_of(instance: Instance) -> list[dict]:
    """The server's groups as the network API describes them (with their rules): those of its
    ports."""
    seen: dict[str, dict] = {}
    for group in SecurityGroup.objects.filter(ports__device_id=str(instance.uuid)).distinct():
        seen[str(group.id)] = security_groups.group_body(group)
    return list(seen.values())
