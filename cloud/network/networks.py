"""Neutron v2.0 read-only subset: who sees which network, subnet and port, and the filters the
clients send. Writes to ports go through cloud.network.ipam.

Tenancy: a project sees shared and external networks plus its own, and the subnets of every network
it sees; it sees only its own ports. An admin sees everything. Anything else answers 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.identity.models import Project
from cloud.ids import parse_uuid
from cloud.validation import parse_bool

from .models import Network, Port, Subnet

Filters = Mapping[str, Sequence[str]]

# Neutron's stock defaults; Kumo does not enforce network quotas yet, it only reports them.
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
_SG_NAMESPACE = uuid.UUID("3f1c54f4-8a7e-4d55-9d2e-5c1b7a0e6d21")


def _authorize(ctx: RequestContext) -> None:
    if not policy.allowed(ctx, "network:get"):
        raise errors.Forbidden("Policy doesn't allow network:get to be performed.")


def _bool(value: str) -> bool:
    return parse_bool(value, f"'{value}' cannot be converted to boolean")


def _ids(values: Sequence[str]) -> list[uuid.UUID]:
    # A value that is not a UUID cannot name anything: it matches nothing rather than failing.
    return [parsed for parsed in map(parse_uuid, values) if parsed is not None]


def _filter(
    queryset: QuerySet, filters: Filters, fields: dict[str, tuple[str, Callable]]
) -> QuerySet:
    """Neutron semantics: a repeated parameter is OR, different parameters are AND."""
    for param, (field, convert) in fields.items():
        values = filters.get(param)
        if not values:
            continue
        if convert is _ids:
            queryset = queryset.filter(**{f"{field}__in": _ids(values)})
        else:
            queryset = queryset.filter(**{f"{field}__in": [convert(v) for v in values]})
    return queryset


def _not_found(kind: str, noun: str, ident: object) -> errors.NotFound:
    return errors.NotFound(f"{noun} {ident} could not be found.", neutron_type=kind)


def _one(queryset: QuerySet, ident: object, kind: str, noun: str) -> Any:
    parsed = parse_uuid(str(ident))
    found = queryset.filter(pk=parsed).first() if parsed else None
    if found is None:
        raise _not_found(kind, noun, ident)
    return found


# --- networks


def visible_networks(ctx: RequestContext) -> QuerySet[Network]:
    networks = Network.objects.all()
    if ctx.is_admin:
        return networks
    return networks.filter(Q(shared=True) | Q(external=True) | Q(project_id=ctx.project_id))


_NETWORK_FILTERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "id": ("pk", _ids),
    "name": ("name", str),
    "shared": ("shared", _bool),
    "router:external": ("external", _bool),
    "admin_state_up": ("admin_state_up", _bool),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
    "description": ("description", str),
}


def list_networks(ctx: RequestContext, filters: Filters) -> list[Network]:
    _authorize(ctx)
    networks = _filter(visible_networks(ctx), filters, _NETWORK_FILTERS)
    if "status" in filters and "ACTIVE" not in filters["status"]:
        return []  # every network is ACTIVE
    return list(networks.prefetch_related("subnets"))


def get_network(ctx: RequestContext, network_id: object) -> Network:
    _authorize(ctx)
    return _one(
        visible_networks(ctx).prefetch_related("subnets"), network_id, "NetworkNotFound", "Network"
    )


# --- subnets


def visible_subnets(ctx: RequestContext) -> QuerySet[Subnet]:
    return Subnet.objects.filter(network__in=visible_networks(ctx)).select_related("network")


_SUBNET_FILTERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "id": ("pk", _ids),
    "name": ("name", str),
    "network_id": ("network_id", _ids),
    "cidr": ("cidr", str),
    "ip_version": ("ip_version", int),
    "gateway_ip": ("gateway_ip", str),
    "enable_dhcp": ("enable_dhcp", _bool),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
}


def list_subnets(ctx: RequestContext, filters: Filters) -> list[Subnet]:
    _authorize(ctx)
    try:
        return list(_filter(visible_subnets(ctx), filters, _SUBNET_FILTERS))
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid filter value: {exc}") from None


def get_subnet(ctx: RequestContext, subnet_id: object) -> Subnet:
    _authorize(ctx)
    return _one(visible_subnets(ctx), subnet_id, "SubnetNotFound", "Subnet")


# --- ports


def visible_ports(ctx: RequestContext) -> QuerySet[Port]:
    ports = Port.objects.all()
    if ctx.is_admin:
        return ports
    return ports.filter(project_id=ctx.project_id)


_PORT_FILTERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "id": ("pk", _ids),
    "name": ("name", str),
    "network_id": ("network_id", _ids),
    "device_id": ("device_id", str),
    "device_owner": ("device_owner", str),
    "mac_address": ("mac_address", str),
    "status": ("status", str),
    "admin_state_up": ("admin_state_up", _bool),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
}


def list_ports(ctx: RequestContext, filters: Filters) -> list[Port]:
    _authorize(ctx)
    return list(_filter(visible_ports(ctx), filters, _PORT_FILTERS))


def get_port(ctx: RequestContext, port_id: object) -> Port:
    _authorize(ctx)
    return _one(visible_ports(ctx), port_id, "PortNotFound", "Port")


# --- quotas, floating IPs, security groups: just enough for `quota show` and `server show`


def _check_project(ctx: RequestContext, project_id: str) -> None:
    if not ctx.is_admin and project_id != ctx.project_id:
        raise errors.Forbidden("Only admin is authorized to access quotas for another project.")


def get_quota(ctx: RequestContext, project_id: str) -> dict[str, int]:
    _authorize(ctx)
    _check_project(ctx, project_id)
    return dict(DEFAULT_QUOTA)


def reset_quota(ctx: RequestContext, project_id: str) -> None:
    """Neutron's quota delete puts a project back on the defaults, which Kumo's fixed network quotas
    always are: nothing to change, but clients (Ansible's quota state=absent) call it."""
    if not policy.allowed(ctx, "network:quotas:delete"):
        raise errors.Forbidden("Policy doesn't allow network:quotas:delete to be performed.")


def get_quota_details(ctx: RequestContext, project_id: str) -> dict[str, dict[str, int]]:
    _authorize(ctx)
    _check_project(ctx, project_id)
    used = {
        "network": Network.objects.filter(project_id=project_id).count(),
        "subnet": Subnet.objects.filter(project_id=project_id).count(),
        "port": Port.objects.filter(project_id=project_id).count(),
        "security_group": 1,
        "security_group_rule": len(_DEFAULT_RULES),
    }
    return {
        name: {"limit": limit, "used": used.get(name, 0), "reserved": 0}
        for name, limit in DEFAULT_QUOTA.items()
    }


def list_floating_ips(ctx: RequestContext) -> list[dict]:
    _authorize(ctx)
    return []


# (direction, ethertype, remote is the group itself)
_DEFAULT_RULES = [
    ("egress", "IPv4", False),
    ("egress", "IPv6", False),
    ("ingress", "IPv4", True),
    ("ingress", "IPv6", True),
]


def default_security_group(project_id: str) -> dict:
    """The "default" group every Neutron project has: egress open, ingress only from members.
    Kumo stores no groups; the ids are derived from the project so they stay stable."""
    group_id = str(uuid.uuid5(_SG_NAMESPACE, project_id))
    rules = [
        {
            "id": str(uuid.uuid5(_SG_NAMESPACE, f"{group_id}/{direction}/{ethertype}")),
            "security_group_id": group_id,
            "direction": direction,
            "ethertype": ethertype,
            "protocol": None,
            "port_range_min": None,
            "port_range_max": None,
            "remote_ip_prefix": None,
            "remote_group_id": group_id if from_group else None,
            "description": "",
            "tenant_id": project_id,
            "project_id": project_id,
        }
        for direction, ethertype, from_group in _DEFAULT_RULES
    ]
    return {
        "id": group_id,
        "name": "default",
        "description": "Default security group",
        "stateful": True,
        "shared": False,
        "tenant_id": project_id,
        "project_id": project_id,
        "security_group_rules": rules,
        "tags": [],
    }


def list_security_groups(ctx: RequestContext, filters: Filters) -> list[dict]:
    _authorize(ctx)
    if ctx.is_admin:
        project_ids = list(Project.objects.order_by("name").values_list("id", flat=True))
    else:
        project_ids = [ctx.project_id] if ctx.project_id else []
    groups = [default_security_group(pid) for pid in project_ids]
    for key in ("id", "name", "project_id", "tenant_id"):
        if filters.get(key):
            groups = [g for g in groups if g[key] in filters[key]]
    return groups


def get_security_group(ctx: RequestContext, group_id: str) -> dict:
    for group in list_security_groups(ctx, {"id": [group_id]}):
        return group
    raise _not_found("SecurityGroupNotFound", "Security group", group_id)


def delete_security_group(ctx: RequestContext, group_id: str) -> None:
    """Neutron's delete of a project's default group (the only groups Kumo has): only an admin may
    (others get Neutron's 409), and Kumo's default group, derived from the project, is back at once
    as Neutron makes a project's default group again when next needed. Tempest's credential
    cleanup deletes each test project's default group this way."""
    get_security_group(ctx, group_id)  # 404 for a group the caller cannot see
    if not policy.allowed(ctx, "network:security_groups:delete_default"):
        raise errors.Conflict("Insufficient rights for removing default security group.",
                              neutron_type="SecurityGroupCannotRemoveDefault")
