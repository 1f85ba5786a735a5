"""Security groups and their rules, with Neutron's semantics.

Every project has one group named "default", made the first time it is needed (any list or show
by the project, any port it creates) with Neutron's four rules: egress anywhere over IPv4 and
IPv6, ingress over both only from members of the group itself. Its id is derived from the project
(uuid5), so ids handed out before groups were stored still name it. Only an admin may delete it
(it comes back when next needed), and nobody renames it. A new group starts with Neutron's two
egress rules. A group that ports use cannot be deleted; a rule that already exists is a 409.

The compute side calls default_group, find_groups and group_body.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.identity.models import Project

from . import common, dataplane, quotas
from .models import SecurityGroup, SecurityGroupRule

_SG_NAMESPACE = uuid.UUID("3f1c54f4-8a7e-4d55-9d2e-5c1b7a0e6d21")
DEFAULT = "default"

# (direction, ethertype, remote is the group itself)
_DEFAULT_RULES = [
    ("egress", "IPv4", False),
    ("egress", "IPv6", False),
    ("ingress", "IPv4", True),
    ("ingress", "IPv6", True),
]

# Neutron's protocol names (neutron_lib.constants.IP_PROTOCOL_MAP), by number.
PROTOCOLS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "icmpv6": 58,
    "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
    "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}  # fmt: skip
_PORTED = {6, 17, 33, 132, 136}  # tcp, udp, dccp, sctp, udplite: port ranges mean ports
_ICMP = {1, 58}


def default_group_id(project_id: str) -> uuid.UUID:
    return uuid.uuid5(_SG_NAMESPACE, project_id)


def default_group(project_id: str) -> SecurityGroup:
    """The project's "default" group, made with its four rules if it does not exist yet. Two
    requests that both find it missing both try; the loser of the insert reads the winner's."""
    found = SecurityGroup.objects.filter(project_id=project_id, name=DEFAULT).first()
    if found is not None:
        return found
    if not Project.objects.filter(pk=project_id).exists():
        raise errors.NotFound(f"Project {project_id} could not be found.")
    group_id = default_group_id(project_id)
    try:
        with transaction.atomic():
            group = SecurityGroup.objects.create(
                id=group_id, project_id=project_id, name=DEFAULT,
                description="Default security group",
            )
            for direction, ethertype, from_self in _DEFAULT_RULES:
                SecurityGroupRule.objects.create(
                    id=uuid.uuid5(_SG_NAMESPACE, f"{group_id}/{direction}/{ethertype}"),
                    security_group=group, project_id=project_id, direction=direction,
                    ethertype=ethertype, remote_group=group if from_self else None,
                )
            return group
    except IntegrityError:
        return SecurityGroup.objects.get(project_id=project_id, name=DEFAULT)


def _visible(ctx: RequestContext) -> QuerySet[SecurityGroup]:
    groups = SecurityGroup.objects.all()
    return groups if ctx.is_admin else groups.filter(project_id=ctx.project_id)


def find_groups(project_id: str, names_or_ids: list[str]) -> list[SecurityGroup]:
    """The project's groups that `names_or_ids` name (by id, else by unique name), in order and
    without repeats; errors.BadRequest naming the first that matches none (or several)."""
    default_group(project_id)
    found: list[SecurityGroup] = []
    for wanted in names_or_ids:
        mine = SecurityGroup.objects.filter(project_id=project_id)
        parsed = common.ids([str(wanted)])
        matches = list(mine.filter(pk=parsed[0])) if parsed else []
        if not matches:
            matches = list(mine.filter(name=wanted))
        if len(matches) != 1:
            why = "not found" if not matches else "is ambiguous: several groups have that name"
            raise errors.BadRequest(f"Security group {wanted} {why}.")
        if matches[0] not in found:
            found.append(matches[0])
    return found


def rule_body(rule: SecurityGroupRule) -> dict:
    project = rule.project_id or ""
    return {
        "id": str(rule.id),
        "security_group_id": str(rule.security_group_id),
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "remote_group_id": str(rule.remote_group_id) if rule.remote_group_id else None,
        "remote_address_group_id": None,
        "normalized_cidr": _normalized(rule.remote_ip_prefix),
        "belongs_to_default_sg": rule.security_group.name == DEFAULT,
        "description": rule.description,
        "tenant_id": project,
        "project_id": project,
        "revision_number": 0,
        "tags": [],
        "created_at": common_time(rule.created_at),
        "updated_at": common_time(rule.updated_at),
    }


def _normalized(prefix: str | None) -> str | None:
    return str(ipaddress.ip_network(prefix, strict=False)) if prefix else None


def common_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def group_body(group: SecurityGroup) -> dict:
    """The API shape of a group, with its rules."""
    project = group.project_id or ""
    return {
        "id": str(group.id),
        "name": group.name,
        "description": group.description,
        "stateful": group.stateful,
        "shared": False,
        "tenant_id": project,
        "project_id": project,
        "security_group_rules": [rule_body(r) for r in group.rules.all()],
        "revision_number": 0,
        "tags": [],
        "created_at": common_time(group.created_at),
        "updated_at": common_time(group.updated_at),
    }


# --- groups

_GROUP_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "name": ("name", str),
    "description": ("description", str),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
    "stateful": ("stateful", common.as_bool),
}


def _ensure_default(ctx: RequestContext) -> None:
    if ctx.project_id:
        default_group(ctx.project_id)


def list_groups(ctx: RequestContext, filters: common.Filters) -> list[SecurityGroup]:
    common.authorize_read(ctx)
    _ensure_default(ctx)
    groups = common.filter_by(_visible(ctx), filters, _GROUP_FILTERS)
    return list(groups.prefetch_related("rules"))


def get_group(ctx: RequestContext, group_id: str) -> SecurityGroup:
    common.authorize_read(ctx)
    _ensure_default(ctx)
    return common.one(_visible(ctx), group_id, "SecurityGroupNotFound", "Security group")


_GROUP_ATTRS = ("name", "description", "stateful", "project_id", "tenant_id")


def create_group(ctx: RequestContext, body: object) -> SecurityGroup:
    common.authorize(ctx, "create_security_group")
    data = common.attrs(body, _GROUP_ATTRS)
    project_id = common.owner_of(ctx, data)
    name = common.text(data, "name")
    if name == DEFAULT:
        raise errors.Conflict("Default security group already exists.",
                              neutron_type="SecurityGroupDefaultAlreadyExists")
    with transaction.atomic():
        if project_id:
            default_group(project_id)
        quotas.check(project_id, "security_group")
        quotas.check(project_id, "security_group_rule", 2)
        group = SecurityGroup.objects.create(
            project_id=project_id, name=name,
            description=common.text(data, "description", max_len=1024),
            stateful=common.boolean(data, "stateful", True),
        )
        for ethertype in ("IPv4", "IPv6"):
            SecurityGroupRule.objects.create(security_group=group, project_id=project_id,
                                             direction="egress", ethertype=ethertype)
    return group


def update_group(ctx: RequestContext, group_id: str, body: object) -> SecurityGroup:
    group = get_group(ctx, group_id)
    common.authorize(ctx, "update_security_group")
    data = common.attrs(body, ("name", "description", "stateful"))
    with transaction.atomic():
        if "name" in data:
            name = common.text(data, "name")
            if group.name == DEFAULT and name != DEFAULT:
                raise errors.Conflict("Updating default security group not allowed.",
                                      neutron_type="SecurityGroupCannotUpdateDefault")
            if name == DEFAULT and group.name != DEFAULT:
                raise errors.Conflict("Default security group already exists.",
                                      neutron_type="SecurityGroupDefaultAlreadyExists")
            group.name = name
        if "description" in data:
            group.description = common.text(data, "description", max_len=1024)
        if "stateful" in data:
            stateful = common.boolean(data, "stateful", group.stateful)
            if stateful != group.stateful and group.ports.exists():
                raise errors.Conflict(f"Security Group {group.id} in use.",
                                      neutron_type="SecurityGroupInUse")
            group.stateful = stateful
        group.save()
        dataplane.notify_groups([str(group.id)])
    return group


def delete_group(ctx: RequestContext, group_id: str) -> None:
    group = get_group(ctx, group_id)
    common.authorize(ctx, "delete_security_group")
    with transaction.atomic():
        if group.name == DEFAULT and not ctx.is_admin:
            raise errors.Conflict("Insufficient rights for removing default security group.",
                                  neutron_type="SecurityGroupCannotRemoveDefault")
        group = SecurityGroup.objects.select_for_update().get(pk=group.pk)
        if group.ports.exists():
            raise errors.Conflict(f"Security Group {group.id} in use.",
                                  neutron_type="SecurityGroupInUse")
        # Rules of other groups that let this one in go with it, as in Neutron.
        referring = sorted({str(g) for g in SecurityGroupRule.objects.filter(
            remote_group=group).exclude(security_group=group).values_list(
            "security_group_id", flat=True)})
        group.delete()
        if referring:
            dataplane.notify_groups(referring)


# --- rules

_RULE_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "security_group_id": ("security_group_id", common.ids),
    "direction": ("direction", str),
    "ethertype": ("ethertype", str),
    "protocol": ("protocol", common.nullable),
    "port_range_min": ("port_range_min", int),
    "port_range_max": ("port_range_max", int),
    "remote_ip_prefix": ("remote_ip_prefix", common.nullable),
    "remote_group_id": ("remote_group_id", common.ids),
    "description": ("description", str),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
}


def _visible_rules(ctx: RequestContext) -> QuerySet[SecurityGroupRule]:
    rules = SecurityGroupRule.objects.select_related("security_group")
    if ctx.is_admin:
        return rules
    return rules.filter(Q(project_id=ctx.project_id) | Q(security_group__project_id=ctx.project_id))


def list_rules(ctx: RequestContext, filters: common.Filters) -> list[SecurityGroupRule]:
    common.authorize_read(ctx)
    _ensure_default(ctx)
    return list(common.filter_by(_visible_rules(ctx), filters, _RULE_FILTERS))


def get_rule(ctx: RequestContext, rule_id: str) -> SecurityGroupRule:
    common.authorize_read(ctx)
    return common.one(_visible_rules(ctx), rule_id, "SecurityGroupRuleNotFound",
                      "Security group rule")


def _protocol(value: object, ethertype: str) -> tuple[str | None, int | None]:
    """The protocol as stored (a name or a number, as given) and its number; None is any."""
    if value is None or (isinstance(value, str) and value.lower() in ("any", "")):
        return None, None
    if isinstance(value, bool):
        raise _bad_protocol(value)
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if not 0 <= number <= 255:
            raise _bad_protocol(value)
        stored: str = str(number)
    elif isinstance(value, str) and value.lower() in PROTOCOLS:
        stored = value.lower()
        number = PROTOCOLS[stored]
    else:
        raise _bad_protocol(value)
    if ethertype == "IPv4" and stored in ("icmpv6", "ipv6-icmp", "58"):
        raise errors.BadRequest(f"Ethertype IPv4 is not supported by protocol {stored}.",
                                neutron_type="SecurityGroupEthertypeConflictWithProtocol")
    return stored, number


def _bad_protocol(value: object) -> errors.BadRequest:
    return errors.BadRequest(
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{sorted(PROTOCOLS)} and integer representations [0 to 255] are supported.",
        neutron_type="SecurityGroupRuleInvalidProtocol")


def _port(value: object, name: str) -> int | None:
    if value is None:
        return None
    # Any integer here: the range depends on the protocol (_port_range says which is wrong).
    return common.integer(value, name, -(2**31), 2**31 - 1)


def _port_range(number: int | None, low: int | None,
                high: int | None) -> tuple[int | None, int | None]:
    """Neutron's checks and messages (Tempest matches them): ports 1-65535 for the protocols that
    have ports, ICMP type and code 0-255, and nothing for the others."""
    if low is None and high is None:
        return None, None
    if number is None:
        raise errors.BadRequest("Must also specify protocol if port range is given.",
                                neutron_type="SecurityGroupProtocolRequiredWithPorts")
    if number in _ICMP:
        if low is not None and not 0 <= low <= 255:
            raise errors.BadRequest(f"Invalid value for ICMP type (port-range-min): {low}",
                                    neutron_type="SecurityGroupInvalidIcmpValue")
        if high is not None and not 0 <= high <= 255:
            raise errors.BadRequest(f"Invalid value for ICMP code (port-range-max): {high}",
                                    neutron_type="SecurityGroupInvalidIcmpValue")
        if low is None:
            raise errors.BadRequest(
                f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) "
                "is missing.", neutron_type="SecurityGroupMissingIcmpType")
        return low, high
    if number not in _PORTED:
        raise errors.BadRequest(
            "Invalid protocol for port range, only supported for TCP, UDP, UDPLITE, SCTP and "
            "DCCP", neutron_type="SecurityGroupInvalidProtocolForPortRange")
    for value in (low, high):
        if value is not None and not 1 <= value <= 65535:
            raise errors.BadRequest(f"Invalid value for port {value}",
                                    neutron_type="SecurityGroupInvalidPortValue")
    if low is None or (high is not None and low > high):
        raise errors.BadRequest("For TCP/UDP protocols, port_range_min must be <= "
                                "port_range_max", neutron_type="SecurityGroupInvalidPortRange")
    return low, high if high is not None else low


_RULE_ATTRS = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min",
               "port_range_max", "remote_ip_prefix", "remote_group_id",
               "remote_address_group_id", "description", "project_id", "tenant_id")


def create_rule(ctx: RequestContext, body: object) -> SecurityGroupRule:
    common.authorize(ctx, "create_security_group_rule")
    data = common.attrs(body, _RULE_ATTRS)
    if "security_group_id" not in data:
        raise errors.BadRequest("Failed to parse request. Required attribute 'security_group_id' "
                                "not specified")
    group = get_group(ctx, common.uuid_value(data["security_group_id"], "security_group_id"))
    common.check_owner(ctx, group.project_id, "create_security_group_rule")
    direction = data.get("direction")
    if direction not in ("ingress", "egress"):
        raise common.invalid("direction", direction,
                             f"{direction} is not in valid_values ['ingress', 'egress'].")
    ethertype = data.get("ethertype", "IPv4")
    if isinstance(ethertype, str) and ethertype.lower() in ("ipv4", "ipv6"):
        ethertype = "IPv" + ethertype[-1]
    else:
        raise errors.BadRequest(f"Invalid input for ethertype. Reason: {ethertype} is not "
                                "in valid_values ['IPv4', 'IPv6'].",
                                neutron_type="SecurityGroupRuleInvalidEtherType")
    protocol, number = _protocol(data.get("protocol"), ethertype)
    low, high = _port_range(number, _port(data.get("port_range_min"), "port_range_min"),
                            _port(data.get("port_range_max"), "port_range_max"))
    prefix = data.get("remote_ip_prefix")
    remote_group_id = data.get("remote_group_id")
    if data.get("remote_address_group_id") is not None:
        raise errors.BadRequest("Address groups are not supported.")
    if prefix is not None and remote_group_id is not None:
        raise errors.BadRequest("Only remote_ip_prefix or remote_group_id may be provided.",
                                neutron_type="SecurityGroupRemoteGroupAndRemoteIpPrefix")
    remote_group = None
    everywhere = False  # 0.0.0.0/0 or ::/0: the same rule as no prefix at all
    if prefix is not None:
        # Kept as given (a bare address gets its host length); normalized_cidr shows the network
        prefix = prefix if "/" in str(prefix) else f"{prefix}/{32 if ':' not in str(prefix) else 128}"
        network = common.cidr(prefix, "remote_ip_prefix", strict=False)
        if f"IPv{network.version}" != ethertype:
            raise errors.BadRequest(
                f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                neutron_type="SecurityGroupRuleParameterConflict")
        everywhere = network.prefixlen == 0
    if remote_group_id is not None:
        # An id that is no UUID names no group: 404, as Neutron answers
        remote_group = common.one(_visible(ctx), remote_group_id, "SecurityGroupNotFound",
                                  "Security group")
    description = common.text(data, "description", max_len=1024)
    with transaction.atomic():
        SecurityGroup.objects.select_for_update().filter(pk=group.pk).first()
        same = SecurityGroupRule.objects.filter(
            security_group=group, direction=direction, ethertype=ethertype, protocol=protocol,
            port_range_min=low, port_range_max=high, remote_ip_prefix=prefix,
            remote_group=remote_group,
        ).first()
        if same is None and everywhere:
            same = SecurityGroupRule.objects.filter(
                security_group=group, direction=direction, ethertype=ethertype,
                protocol=protocol, port_range_min=low, port_range_max=high,
                remote_ip_prefix=None, remote_group=None).first()
        if same is not None:
            raise errors.Conflict(f"Security group rule already exists. Rule id is {same.id}.",
                                  neutron_type="SecurityGroupRuleExists")
        quotas.check(group.project_id, "security_group_rule")
        rule = SecurityGroupRule.objects.create(
            security_group=group, project_id=group.project_id, direction=direction,
            ethertype=ethertype, protocol=protocol, port_range_min=low, port_range_max=high,
            remote_ip_prefix=prefix, remote_group=remote_group, description=description,
        )
        dataplane.notify_groups([str(group.id)])
    return rule


def delete_rule(ctx: RequestContext, rule_id: str) -> None:
    rule = get_rule(ctx, rule_id)
    common.authorize(ctx, "delete_security_group_rule")
    common.check_owner(ctx, rule.security_group.project_id, "delete_security_group_rule")
    with transaction.atomic():
        group_id = str(rule.security_group_id)
        rule.delete()
        dataplane.notify_groups([group_id])
