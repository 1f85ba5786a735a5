"""Security groups: CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup and
Authorize/Revoke SecurityGroupIngress/Egress, over Neutron's groups and rules
(cloud/network/security_groups.py) with the network API's policy (network:get, network:write).

How EC2's permissions map onto Neutron's rules: one IpPermission is one protocol and port range
with a list of sources; each source (an IPv4 range, an IPv6 range or a group) is one Neutron rule.
Protocol -1 is Neutron's "any"; tcp/udp with 0-65535 is "any port"; icmp's FromPort/ToPort are
its type and code, -1 for any. A rule with no remote prefix and no remote group (the egress rules
every group starts with) is shown as 0.0.0.0/0 or ::/0, and authorizing that range again is a
duplicate, as it is in EC2.

A Neutron group belongs to no network, so DescribeSecurityGroups shows no vpcId and its vpc-id
filter matches every VPC the project sees: a script that looks up "the default group of this VPC"
finds the project's default group.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.ids import ec2_id
from cloud.network import common as network_common
from cloud.network import networks
from cloud.network import security_groups as groups
from cloud.network.models import SecurityGroup, SecurityGroupRule

from . import listing, resources, tags
from .actions_instances import dry_run
from .errors import Ec2Error, invalid, missing
from .params import Params
from .registry import Call, action

READ, WRITE = "network:get", "network:write"
_NAMED = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
_NAME_OF = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}


def owner_id(project_id: object) -> str:
    """EC2's account id of a project: its id (EC2's are 12 digits; clients treat it as text)."""
    return str(project_id or "").replace("-", "")


def rule_id(rule: SecurityGroupRule) -> str:
    return ec2_id("sgr", rule.pk)


# --- the project's groups


def own_groups(ctx: RequestContext) -> QuerySet[SecurityGroup]:
    """The project's groups (the default one made if it is not yet): EC2 shows an account its
    own, whatever an admin's role lets Neutron show."""
    network_common.authorize_read(ctx)
    groups.default_group(str(ctx.project_id))
    return SecurityGroup.objects.filter(project_id=ctx.project_id)


def find_group(ctx: RequestContext, params: Params, id_name: str = "GroupId",
               name_name: str = "GroupName") -> SecurityGroup:
    group_id = params.get(id_name)
    name = params.get(name_name)
    if group_id:
        return resources.find(resources.SECURITY_GROUP, group_id, own_groups(ctx))
    if name:
        return group_named(ctx, name)
    raise Ec2Error("MissingParameter", f"The request must contain the parameter {id_name} or "
                   f"{name_name}.")


def group_named(ctx: RequestContext, name: str) -> SecurityGroup:
    found = list(own_groups(ctx).filter(name=name)[:2])
    if not found:
        raise Ec2Error("InvalidGroup.NotFound",
                       f"The security group '{name}' does not exist")
    if len(found) > 1:
        raise invalid("GroupName", name, "Several groups have that name; name the group by its "
                      "GroupId.")
    return found[0]


# --- EC2's shape of rules


def _number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    if protocol.isdigit():
        return int(protocol)
    return groups.PROTOCOLS.get(protocol.lower())


def _ec2_protocol(protocol: str | None) -> str:
    number = _number(protocol)
    if number is None:
        return "-1"
    return _NAME_OF.get(number, str(number))


def _ports(rule: SecurityGroupRule) -> tuple[int | None, int | None]:
    number = _number(rule.protocol)
    if number is None:
        return None, None
    if number in (1, 58):
        return (-1 if rule.port_range_min is None else rule.port_range_min,
                -1 if rule.port_range_max is None else rule.port_range_max)
    if number in (6, 17):
        if rule.port_range_min is None:
            return 0, 65535
        return rule.port_range_min, rule.port_range_max
    return None, None


def _everywhere(rule: SecurityGroupRule) -> str:
    return "0.0.0.0/0" if rule.ethertype == "IPv4" else "::/0"


def permissions(rules: list[SecurityGroupRule]) -> list[dict[str, Any]]:
    """Rules gathered into EC2's IpPermissions: one per protocol and port range."""
    gathered: dict[tuple[str, int | None, int | None], dict[str, Any]] = {}
    for rule in rules:
        low, high = _ports(rule)
        key = (_ec2_protocol(rule.protocol), low, high)
        item = gathered.setdefault(key, {"ipProtocol": key[0], "fromPort": low, "toPort": high,
                                         "groups": [], "ipRanges": [], "ipv6Ranges": [],
                                         "prefixListIds": []})
        description = rule.description or None
        if rule.remote_group_id is not None:
            remote = rule.remote_group
            pair = {"groupId": ec2_id("sg", rule.remote_group_id),
                    "userId": owner_id(remote.project_id if remote else ""),
                    "description": description}
            # A group source is one Neutron rule per ethertype; EC2 shows the pair once.
            if pair not in item["groups"]:
                item["groups"].append(pair)
        elif rule.ethertype == "IPv6":
            item["ipv6Ranges"].append({"cidrIpv6": rule.remote_ip_prefix or _everywhere(rule),
                                       "description": description})
        else:
            item["ipRanges"].append({"cidrIp": rule.remote_ip_prefix or _everywhere(rule),
                                     "description": description})
    return list(gathered.values())


def rule_shape(rule: SecurityGroupRule) -> dict[str, Any]:
    low, high = _ports(rule)
    shape: dict[str, Any] = {
        "securityGroupRuleId": rule_id(rule), "groupId": ec2_id("sg", rule.security_group_id),
        "groupOwnerId": owner_id(rule.project_id), "isEgress": rule.direction == "egress",
        "ipProtocol": _ec2_protocol(rule.protocol), "fromPort": low, "toPort": high,
        "description": rule.description or None, "tagSet": [],
    }
    if rule.remote_group_id is not None:
        shape["referencedGroupInfo"] = {"groupId": ec2_id("sg", rule.remote_group_id),
                                        "userId": owner_id(rule.project_id)}
    elif rule.ethertype == "IPv6":
        shape["cidrIpv6"] = rule.remote_ip_prefix or _everywhere(rule)
    else:
        shape["cidrIpv4"] = rule.remote_ip_prefix or _everywhere(rule)
    return shape


def describe(group: SecurityGroup, tags: list[dict[str, str]]) -> dict[str, Any]:
    rules = list(group.rules.all())  # prefetched with their remote groups by the caller
    return {
        "groupId": ec2_id("sg", group.pk), "groupName": group.name,
        "groupDescription": group.description, "ownerId": owner_id(group.project_id),
        "ipPermissions": permissions([r for r in rules if r.direction == "ingress"]),
        "ipPermissionsEgress": permissions([r for r in rules if r.direction == "egress"]),
        "tagSet": tags,
    }


# --- EC2's permissions as Neutron rule bodies


@dataclass(frozen=True)
class Wanted:
    """One Neutron rule an EC2 permission asks for."""

    direction: str
    ethertype: str
    protocol: str | None
    low: int | None
    high: int | None
    prefix: str | None
    remote_group: SecurityGroup | None
    description: str

    def body(self, group: SecurityGroup) -> dict[str, Any]:
        body: dict[str, Any] = {
            "security_group_id": str(group.pk), "direction": self.direction,
            "ethertype": self.ethertype, "protocol": self.protocol,
            "port_range_min": self.low, "port_range_max": self.high,
            "description": self.description}
        if self.prefix is not None:
            body["remote_ip_prefix"] = self.prefix
        if self.remote_group is not None:
            body["remote_group_id"] = str(self.remote_group.pk)
        return body

    def matches(self, rule: SecurityGroupRule) -> bool:
        if (rule.direction, rule.ethertype) != (self.direction, self.ethertype):
            return False
        if _number(rule.protocol) != _number(self.protocol):
            return False
        if (rule.port_range_min, rule.port_range_max) != (self.low, self.high):
            return False
        if self.remote_group is not None:
            return rule.remote_group_id == self.remote_group.pk
        if rule.remote_group_id is not None:
            return False
        everywhere = self.prefix in (None, "0.0.0.0/0", "::/0")
        if everywhere and rule.remote_ip_prefix in (None, "0.0.0.0/0", "::/0"):
            return True
        return rule.remote_ip_prefix == self.prefix


def _protocol(text: str, where: str) -> tuple[str | None, int | None]:
    value = text.strip().lower()
    if value in ("-1", "all"):
        return None, None
    if value in _NAMED:
        number = _NAMED[value]
    elif value.isdigit() and 0 <= int(value) <= 255:
        number = int(value)
    else:
        raise invalid(f"{where}IpProtocol", text, "Use tcp, udp, icmp, icmpv6, -1 or a protocol "
                      "number 0-255.")
    return _NAME_OF.get(number, str(number)), number


def _port_range(params: Params, number: int | None, where: str) -> tuple[int | None, int | None]:
    low = params.integer("FromPort", None, low=-1, high=65535)
    high = params.integer("ToPort", None, low=-1, high=65535)
    if number in (6, 17):
        if low is None or high is None:
            raise missing(f"{where}FromPort and {where}ToPort")
        if low == -1 and high == -1 or (low == 0 and high == 65535):
            return None, None  # every port: Neutron's rule without a range
        if low < 1 or high < low:
            raise invalid(f"{where}FromPort", low, f"The port range {low}-{high} is not valid: "
                          "use 1-65535 with FromPort <= ToPort, or 0-65535 for every port.")
        return low, high
    if number in (1, 58):
        if low is None or low == -1:
            if high not in (None, -1):
                raise invalid(f"{where}ToPort", high, "An ICMP code needs an ICMP type "
                              "(FromPort).")
            return None, None
        if low > 255 or (high is not None and high > 255):
            raise invalid(f"{where}FromPort", low, "ICMP type and code are 0-255, or -1.")
        return low, None if high in (None, -1) else high
    return None, None  # -1 and other protocols have no ports


def _permission(ctx: RequestContext, params: Params, direction: str,
                where: str) -> list[Wanted]:
    protocol, number = _protocol(params.required("IpProtocol"), where)
    low, high = _port_range(params, number, where)
    wanted: list[Wanted] = []

    def add(ethertype: str, prefix: str | None, remote: SecurityGroup | None,
            description: str | None) -> None:
        proto = protocol
        if ethertype == "IPv6" and number == 1:
            proto = "ipv6-icmp"
        if ethertype == "IPv4" and number == 58:
            raise invalid(f"{where}IpProtocol", "icmpv6", "ICMPv6 needs an IPv6 range.")
        wanted.append(Wanted(direction, ethertype, proto, low, high, prefix, remote,
                             description or ""))

    for index, item in enumerate(params.items("IpRanges"), 1):
        cidr = item.required("CidrIp")
        _check_cidr(cidr, 4, f"{where}IpRanges.{index}.CidrIp")
        add("IPv4", cidr, None, item.get("Description"))
    for index, item in enumerate(params.items("Ipv6Ranges"), 1):
        cidr = item.required("CidrIpv6")
        _check_cidr(cidr, 6, f"{where}Ipv6Ranges.{index}.CidrIpv6")
        add("IPv6", cidr, None, item.get("Description"))
    for item in params.items("Groups"):
        remote = find_group(ctx, item)
        for ethertype in ("IPv4", "IPv6"):
            if number == 58 and ethertype == "IPv4":
                continue
            add(ethertype, None, remote, item.get("Description"))
    if params.items("PrefixListIds"):
        raise invalid(f"{where}PrefixListIds", "…", "Kumo has no prefix lists.")
    if not wanted:
        raise Ec2Error("MissingParameter", f"{where.rstrip('.') or 'The permission'} names no "
                       "source: give IpRanges, Ipv6Ranges or UserIdGroupPairs.")
    return wanted


def _check_cidr(cidr: str, version: int, name: str) -> None:
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise invalid(name, cidr, "It is not a CIDR block.") from None
    if network.version != version or "/" not in cidr:
        raise invalid(name, cidr, f"It must be an IPv{version} CIDR block such as "
                      f"{'10.0.0.0/24' if version == 4 else '2001:db8::/64'}.")


def wanted_rules(ctx: RequestContext, params: Params, direction: str) -> list[Wanted]:
    """The rules a request asks for: IpPermissions.N, or the old flat form (IpProtocol,
    FromPort, ToPort, CidrIp or SourceSecurityGroupName at the top)."""
    found: list[Wanted] = []
    for index, item in enumerate(params.items("IpPermissions"), 1):
        found.extend(_permission(ctx, item, direction, f"IpPermissions.{index}."))
    if params.get("IpProtocol") or params.get("CidrIp") or params.get("SourceSecurityGroupName"):
        if found:
            raise invalid("IpProtocol", params.get("IpProtocol"), "Give either IpPermissions or "
                          "the flat IpProtocol/CidrIp parameters, not both.")
        flat: dict[str, Any] = {"IpProtocol": params.get("IpProtocol") or "-1",
                                "FromPort": params.get("FromPort"),
                                "ToPort": params.get("ToPort")}
        if params.get("CidrIp"):
            flat["IpRanges"] = {"1": {"CidrIp": params.get("CidrIp")}}
        if params.get("SourceSecurityGroupName"):
            flat["Groups"] = {"1": {"GroupName": params.get("SourceSecurityGroupName")}}
        found.extend(_permission(ctx, Params({k: v for k, v in flat.items() if v is not None}),
                                 direction, ""))
    if not found:
        raise Ec2Error("MissingParameter", "The request must contain the parameter "
                       "IpPermissions.")
    return found


# --- actions


FILTERS_BASE: listing.Filters = {
    "group-id": listing.path("groupId"),
    "group-name": listing.path("groupName"),
    "description": listing.path("groupDescription"),
    "owner-id": listing.path("ownerId"),
    "ip-permission.protocol": listing.path("ipPermissions", "ipProtocol"),
    "ip-permission.from-port": listing.path("ipPermissions", "fromPort"),
    "ip-permission.to-port": listing.path("ipPermissions", "toPort"),
    "ip-permission.cidr": listing.path("ipPermissions", "ipRanges", "cidrIp"),
    "ip-permission.ipv6-cidr": listing.path("ipPermissions", "ipv6Ranges", "cidrIpv6"),
    "ip-permission.group-id": listing.path("ipPermissions", "groups", "groupId"),
    "ip-permission.user-id": listing.path("ipPermissions", "groups", "userId"),
    "egress.ip-permission.protocol": listing.path("ipPermissionsEgress", "ipProtocol"),
    "egress.ip-permission.from-port": listing.path("ipPermissionsEgress", "fromPort"),
    "egress.ip-permission.to-port": listing.path("ipPermissionsEgress", "toPort"),
    "egress.ip-permission.cidr": listing.path("ipPermissionsEgress", "ipRanges", "cidrIp"),
    "egress.ip-permission.ipv6-cidr": listing.path("ipPermissionsEgress", "ipv6Ranges",
                                                   "cidrIpv6"),
    "egress.ip-permission.group-id": listing.path("ipPermissionsEgress", "groups", "groupId"),
}


def _vpc_ids(ctx: RequestContext) -> list[str]:
    return [ec2_id("vpc", n.pk) for n in networks.visible_networks(ctx).filter(external=False)]


def _check_vpc(ctx: RequestContext, vpc_id: str) -> None:
    resources.find(resources.VPC, vpc_id, networks.visible_networks(ctx).filter(external=False))


@action("CreateSecurityGroup", WRITE)
def create_security_group(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    name = call.params.required("GroupName")
    description = call.params.required("GroupDescription")
    if len(name) > 255 or name.lower().startswith("sg-"):
        raise invalid("GroupName", name, "A group name is at most 255 characters and does not "
                      "start with sg-.")
    if call.params.get("VpcId"):
        _check_vpc(ctx, call.params.required("VpcId"))
    wanted_tags = tags.tag_specifications(call.params, "security-group")
    if own_groups(ctx).filter(name=name).exists():
        raise Ec2Error("InvalidGroup.Duplicate", f"The security group '{name}' already exists")
    dry_run(call.params)
    with transaction.atomic():
        try:
            group = groups.create_group(ctx, {"name": name, "description": description})
        except errors.Conflict as exc:
            if exc.neutron_type == "OverQuota":
                raise Ec2Error("SecurityGroupLimitExceeded", exc.message) from None
            raise
        tags.set_tags(ctx, resources.SECURITY_GROUP, group.pk, wanted_tags)
    return {"groupId": ec2_id("sg", group.pk),
            "tagSet": [{"key": k, "value": v} for k, v in sorted(wanted_tags.items())] or None}


@action("DescribeSecurityGroups", READ)
def describe_security_groups(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    mine = own_groups(ctx)
    chosen = list(mine.prefetch_related(Prefetch(
        "rules", queryset=SecurityGroupRule.objects.select_related("remote_group"))))
    ids = call.params.strings("GroupId")
    names = call.params.strings("GroupName")
    chosen = resources.narrow(resources.SECURITY_GROUP, ids, chosen)
    if names:
        for name in names:
            if not any(g.name == name for g in chosen):
                raise Ec2Error("InvalidGroup.NotFound",
                               f"The security group '{name}' does not exist")
        chosen = [g for g in chosen if g.name in names]
    tagged = tags.tags_for(resources.SECURITY_GROUP, [g.pk for g in chosen])
    items = [describe(g, tagged[str(g.pk)]) for g in chosen]
    vpcs = _vpc_ids(ctx)
    filters = {**FILTERS_BASE, "vpc-id": lambda _item: vpcs}
    items, token = listing.page(listing.apply(items, call.params, filters), call.params)
    return {"securityGroupInfo": items, "nextToken": token}


@action("DeleteSecurityGroup", WRITE)
def delete_security_group(call: Call) -> dict[str, Any]:
    group = find_group(call.ctx, call.params)
    if group.name == groups.DEFAULT:
        raise Ec2Error("CannotDelete", "The default security group cannot be deleted by a "
                       "user.")
    dry_run(call.params)
    try:
        groups.delete_group(call.ctx, str(group.pk))
    except errors.Conflict as exc:
        raise Ec2Error("DependencyViolation", f"resource {ec2_id('sg', group.pk)} has a "
                       f"dependent object: {exc.message}") from None
    return {"return": True, "groupId": ec2_id("sg", group.pk)}


def _authorize(call: Call, direction: str) -> dict[str, Any]:
    ctx = call.ctx
    group = find_group(ctx, call.params)
    wanted = wanted_rules(ctx, call.params, direction)
    made: list[SecurityGroupRule] = []
    dry_run(call.params)
    with transaction.atomic():
        for rule in wanted:
            try:
                made.append(groups.create_rule(ctx, rule.body(group)))
            except errors.Conflict as exc:
                if exc.neutron_type == "OverQuota":
                    raise Ec2Error("RulesPerSecurityGroupLimitExceeded", exc.message) from None
                if exc.neutron_type != "SecurityGroupRuleExists":
                    raise
                raise Ec2Error("InvalidPermission.Duplicate", _duplicate(rule)) from None
            except errors.BadRequest as exc:
                raise invalid("IpPermissions", "…", exc.message) from None
    return {"return": True, "securityGroupRuleSet": [rule_shape(r) for r in made]}


def _duplicate(rule: Wanted) -> str:
    source = rule.prefix or (ec2_id("sg", rule.remote_group.pk) if rule.remote_group else
                             ("0.0.0.0/0" if rule.ethertype == "IPv4" else "::/0"))
    ports = "" if rule.low is None else f", ports {rule.low}-{rule.high or rule.low}"
    return (f"the specified rule \"peer: {source}, {_ec2_protocol(rule.protocol)}{ports}, "
            f"{'ALLOW' if rule.direction == 'ingress' else 'egress ALLOW'}\" already exists")


def _revoke(call: Call, direction: str) -> dict[str, Any]:
    ctx = call.ctx
    group = find_group(ctx, call.params)
    existing = list(group.rules.filter(direction=direction))
    doomed: list[SecurityGroupRule] = []
    ids = call.params.strings("SecurityGroupRuleId")
    for rule_text in ids:
        match = next((r for r in existing if rule_id(r) == rule_text), None)
        if match is None:
            raise Ec2Error("InvalidSecurityGroupRuleId.NotFound",
                           f"The security group rule ID '{rule_text}' does not exist")
        doomed.append(match)
    if not ids or call.params.items("IpPermissions") or call.params.get("IpProtocol"):
        for wanted in wanted_rules(ctx, call.params, direction):
            match = next((r for r in existing if wanted.matches(r) and r not in doomed), None)
            if match is None:
                raise Ec2Error("InvalidPermission.NotFound", "The specified rule does not exist "
                               "in this security group.")
            doomed.append(match)
    dry_run(call.params)
    with transaction.atomic():
        for rule in doomed:
            groups.delete_rule(ctx, str(rule.pk))
    return {"return": True, "revokedSecurityGroupRuleSet": [rule_shape(r) for r in doomed]}


@action("AuthorizeSecurityGroupIngress", WRITE)
def authorize_ingress(call: Call) -> dict[str, Any]:
    return _authorize(call, "ingress")


@action("AuthorizeSecurityGroupEgress", WRITE)
def authorize_egress(call: Call) -> dict[str, Any]:
    return _authorize(call, "egress")


@action("RevokeSecurityGroupIngress", WRITE)
def revoke_ingress(call: Call) -> dict[str, Any]:
    return _revoke(call, "ingress")


@action("RevokeSecurityGroupEgress", WRITE)
def revoke_egress(call: Call) -> dict[str, Any]:
    return _revoke(call, "egress")



RULE_FILTERS: listing.Filters = {
    "group-id": listing.path("groupId"),
    "security-group-rule-id": listing.path("securityGroupRuleId"),
}


@action("DescribeSecurityGroupRules", READ)
def describe_security_group_rules(call: Call) -> dict[str, Any]:
    """The project's rules one by one (sgr- and the Neutron rule's uuid)."""
    rules = list(SecurityGroupRule.objects.filter(security_group__in=own_groups(call.ctx))
                 .select_related("remote_group").order_by("created_at", "id"))
    wanted = call.params.strings("SecurityGroupRuleId")
    if wanted:
        known = {rule_id(r): r for r in rules}
        for value in wanted:
            if value not in known:
                raise Ec2Error("InvalidSecurityGroupRuleId.NotFound",
                               f"The security group rule ID '{value}' does not exist")
        rules = [known[value] for value in dict.fromkeys(wanted)]
    items = listing.apply([rule_shape(r) for r in rules], call.params, RULE_FILTERS)
    items, token = listing.page(items, call.params, low=5, high=1000)
    return {"securityGroupRuleSet": items, "nextToken": token}
