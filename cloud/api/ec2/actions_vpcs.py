"""VPCs and subnets over Kumo's networks (cloud/network/networks.py, subnets.py), with the
network API's policy: DescribeVpcs, DescribeSubnets, CreateVpc, DeleteVpc, CreateSubnet and
DeleteSubnet.

A VPC is a network the project sees that is not external (its own tenant networks and the shared
ones): `vpc-` and the network's uuid. Its cidrBlock is its first IPv4 subnet's (a Neutron network
has no range of its own; every subnet's range is in cidrBlockAssociationSet). A shared network
is the default VPC, as it is what a server of any project gets without naming one. A subnet is a
Neutron subnet: `subnet-` and its uuid, in the compute zone "nova" (Neutron's subnets have no
zone), with as many free addresses as its allocation pools hold beyond those ports took.

CreateVpc makes a network; its CidrBlock is checked and answered but not kept (a Neutron network
has no range of its own), so until CreateSubnet gives it a subnet DescribeVpcs shows no cidrBlock,
and a subnet's range is not held to the VPC's. Delete* delete them, EC2's DependencyViolation when
something (a subnet, a port) still uses them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db.models import QuerySet

from cloud import errors
from cloud.compute.availability_zones import DEFAULT_ZONE
from cloud.identity.context import RequestContext
from cloud.ids import ec2_id
from cloud.network import common as network_common
from cloud.network import ipam, networks, subnets
from cloud.network.models import Network, Port, Subnet

from . import listing, resources, tags
from .actions_instances import dry_run
from .actions_security_groups import owner_id
from .errors import Ec2Error, invalid, translate
from .registry import Call, action

READ, WRITE = "network:get", "network:write"

VPC_FILTERS: listing.Filters = {
    "vpc-id": listing.path("vpcId"),
    "cidr": listing.path("cidrBlock"),
    "cidr-block-association.cidr-block": listing.path("cidrBlockAssociationSet", "cidrBlock"),
    "cidr-block-association.association-id": listing.path("cidrBlockAssociationSet",
                                                          "associationId"),
    "cidr-block-association.state": listing.path("cidrBlockAssociationSet", "cidrBlockState",
                                                 "state"),
    "state": listing.path("state"),
    "is-default": listing.path("isDefault"),
    "owner-id": listing.path("ownerId"),
    "instance-tenancy": listing.path("instanceTenancy"),
}
SUBNET_FILTERS: listing.Filters = {
    "subnet-id": listing.path("subnetId"),
    "vpc-id": listing.path("vpcId"),
    "cidr-block": listing.path("cidrBlock"),
    "cidr": listing.path("cidrBlock"),
    "cidrBlock": listing.path("cidrBlock"),
    "availability-zone": listing.path("availabilityZone"),
    "availabilityZone": listing.path("availabilityZone"),
    "available-ip-address-count": listing.path("availableIpAddressCount"),
    "default-for-az": listing.path("defaultForAz"),
    "defaultForAz": listing.path("defaultForAz"),
    "map-public-ip-on-launch": listing.path("mapPublicIpOnLaunch"),
    "state": listing.path("state"),
    "owner-id": listing.path("ownerId"),
    "subnet-arn": listing.path("subnetArn"),
}


def vpcs_of(ctx: RequestContext) -> QuerySet[Network]:
    network_common.authorize_read(ctx)  # Neutron's read check
    return networks.visible_networks(ctx).filter(external=False).order_by("created_at", "id")


def subnets_of(ctx: RequestContext) -> QuerySet[Subnet]:
    network_common.authorize_read(ctx)  # Neutron's read check
    return subnets.visible_subnets(ctx).filter(network__external=False).order_by(
        "created_at", "id")


def _ipv4(subnet_list: list[Subnet]) -> list[Subnet]:
    return [s for s in subnet_list if s.ip_version == 4]


def describe_vpc(network: Network, tag_set: list[dict[str, str]]) -> dict[str, Any]:
    ranges = _ipv4(list(network.subnets.all()))
    return {
        "vpcId": ec2_id("vpc", network.pk), "state": "available",
        "cidrBlock": ranges[0].cidr if ranges else None,
        "cidrBlockAssociationSet": [
            {"associationId": ec2_id("vpc-cidr-assoc", s.pk), "cidrBlock": s.cidr,
             "cidrBlockState": {"state": "associated"}} for s in ranges],
        "ipv6CidrBlockAssociationSet": [],
        "dhcpOptionsId": "default", "instanceTenancy": "default",
        "isDefault": network.shared, "ownerId": owner_id(network.project_id),
        "tagSet": tag_set,
    }


def available_addresses(subnet: Subnet, used: set[str]) -> int:
    size = sum(int(end) - int(start) + 1 for start, end in ipam.pools_of(subnet))
    taken = 0
    for start, end in ipam.pools_of(subnet):
        taken += sum(1 for a in used if start <= ipaddress.IPv4Address(a) <= end)
    gateway = subnet.gateway_ip
    if gateway and gateway not in used and any(
            start <= ipaddress.IPv4Address(gateway) <= end for start, end in ipam.pools_of(subnet)):
        taken += 1
    return max(size - taken, 0)


def _used_by_subnet(subnet_ids: list[Any]) -> dict[str, set[str]]:
    """Each subnet's addresses ports hold, in one pass over the subnets' networks' ports."""
    wanted = {str(s) for s in subnet_ids}
    used: dict[str, set[str]] = {s: set() for s in wanted}
    networks_of = Subnet.objects.filter(pk__in=subnet_ids).values_list("network_id", flat=True)
    for fixed in Port.objects.filter(network_id__in=list(networks_of)).values_list(
            "fixed_ips", flat=True):
        for entry in fixed or []:
            subnet = str(entry.get("subnet_id"))
            if subnet in used and entry.get("ip_address"):
                used[subnet].add(entry["ip_address"])
    return used


def describe_subnet(subnet: Subnet, used: set[str],
                    tag_set: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "subnetId": ec2_id("subnet", subnet.pk), "vpcId": ec2_id("vpc", subnet.network_id),
        "state": "available", "cidrBlock": subnet.cidr,
        "availableIpAddressCount": available_addresses(subnet, used),
        "availabilityZone": DEFAULT_ZONE, "defaultForAz": subnet.network.shared,
        "mapPublicIpOnLaunch": False, "assignIpv6AddressOnCreation": False,
        "ipv6CidrBlockAssociationSet": [],
        "ownerId": owner_id(subnet.project_id or subnet.network.project_id),
        "tagSet": tag_set,
    }


@action("DescribeVpcs", READ)
def describe_vpcs(call: Call) -> dict[str, Any]:
    chosen = list(vpcs_of(call.ctx).prefetch_related("subnets"))
    chosen = resources.narrow(resources.VPC, call.params.strings("VpcId"), chosen)
    tagged = tags.tags_for(resources.VPC, [n.pk for n in chosen])
    items = [describe_vpc(n, tagged[str(n.pk)]) for n in chosen]
    items, token = listing.page(listing.apply(items, call.params, VPC_FILTERS), call.params)
    return {"vpcSet": items, "nextToken": token}


@action("DescribeSubnets", READ)
def describe_subnets(call: Call) -> dict[str, Any]:
    chosen = list(subnets_of(call.ctx).select_related("network"))
    chosen = resources.narrow(resources.SUBNET, call.params.strings("SubnetId"), chosen)
    used = _used_by_subnet([s.pk for s in chosen])
    tagged = tags.tags_for(resources.SUBNET, [s.pk for s in chosen])
    items = [describe_subnet(s, used[str(s.pk)], tagged[str(s.pk)]) for s in chosen]
    items, token = listing.page(listing.apply(items, call.params, SUBNET_FILTERS), call.params)
    return {"subnetSet": items, "nextToken": token}


def _cidr(text: str, name: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise invalid(name, text, "It must be an IPv4 CIDR block such as 10.0.0.0/16, with no "
                      "host bits set.") from None
    if not isinstance(network, ipaddress.IPv4Network) or "/" not in text:
        raise invalid(name, text, "It must be an IPv4 CIDR block such as 10.0.0.0/16.")
    if not 16 <= network.prefixlen <= 28:
        raise Ec2Error("InvalidVpc.Range" if name == "CidrBlock" else "InvalidSubnet.Range",
                       f"The CIDR '{text}' is invalid: EC2 ranges are /16 to /28.")
    return network


def _over_quota(exc: errors.Conflict, code: str) -> Exception:
    """Neutron's quota refusal as EC2's limit code; any other conflict as translated."""
    return Ec2Error(code, exc.message) if exc.neutron_type == "OverQuota" else translate(exc)


@action("CreateVpc", WRITE)
def create_vpc(call: Call) -> dict[str, Any]:
    """A network of the project; CidrBlock is checked (EC2 requires one) and its subnets are
    made with CreateSubnet, as in EC2."""
    cidr = _cidr(call.params.required("CidrBlock"), "CidrBlock")
    tenancy = call.params.get("InstanceTenancy", "default")
    if tenancy != "default":
        raise invalid("InstanceTenancy", tenancy, "Kumo has default tenancy only.")
    wanted_tags = tags.tag_specifications(call.params, "vpc")
    name = wanted_tags.get("Name", "")
    dry_run(call.params)
    try:
        network = networks.create_network(call.ctx, {"name": name,
                                                     "description": f"EC2 VPC {cidr}"})
    except errors.Conflict as exc:
        raise _over_quota(exc, "VpcLimitExceeded") from None
    if wanted_tags:
        tags.set_tags(call.ctx, resources.VPC, network.pk, wanted_tags)
    shape = describe_vpc(network, [{"key": k, "value": v}
                                   for k, v in sorted(wanted_tags.items())])
    shape.update(cidrBlock=str(cidr), state="available")
    return {"vpc": shape}


@action("DeleteVpc", WRITE)
def delete_vpc(call: Call) -> dict[str, Any]:
    network = resources.find(resources.VPC, call.params.required("VpcId"), vpcs_of(call.ctx))
    # Neutron's refusal of a network the project sees but does not own comes first.
    network_common.authorize(call.ctx, "delete_network")
    network_common.check_owner(call.ctx, network.project_id, "delete_network")
    if network.subnets.exists():
        raise Ec2Error("DependencyViolation", f"The vpc '{ec2_id('vpc', network.pk)}' has "
                       "dependencies (subnets) and cannot be deleted.")
    dry_run(call.params)
    try:
        networks.delete_network(call.ctx, str(network.pk))
    except errors.Conflict as exc:
        raise Ec2Error("DependencyViolation", exc.message) from None
    return {}


@action("CreateSubnet", WRITE)
def create_subnet(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    network = resources.find(resources.VPC, call.params.required("VpcId"), vpcs_of(ctx))
    cidr = _cidr(call.params.required("CidrBlock"), "SubnetCidrBlock")
    zone = call.params.get("AvailabilityZone")
    if zone and zone != DEFAULT_ZONE:
        raise invalid("AvailabilityZone", zone, f"Kumo's subnets are in zone {DEFAULT_ZONE}.")
    wanted_tags = tags.tag_specifications(call.params, "subnet")
    dry_run(call.params)
    try:
        subnet = subnets.create_subnet(ctx, {"network_id": str(network.pk), "cidr": str(cidr),
                                             "ip_version": 4,
                                             "name": wanted_tags.get("Name", "")})
    except errors.Conflict as exc:
        raise _over_quota(exc, "SubnetLimitExceeded") from None
    except errors.BadRequest as exc:
        if exc.neutron_type == "InvalidInput" and "overlaps" in exc.message:
            raise Ec2Error("InvalidSubnet.Conflict", f"The CIDR '{cidr}' conflicts with another "
                           "subnet") from None
        raise
    if wanted_tags:
        tags.set_tags(ctx, resources.SUBNET, subnet.pk, wanted_tags)
    used = _used_by_subnet([subnet.pk])
    tagged = tags.tags_for(resources.SUBNET, [subnet.pk])
    return {"subnet": describe_subnet(subnet, used[str(subnet.pk)], tagged[str(subnet.pk)])}


@action("DeleteSubnet", WRITE)
def delete_subnet(call: Call) -> dict[str, Any]:
    subnet = resources.find(resources.SUBNET, call.params.required("SubnetId"),
                            subnets_of(call.ctx))
    dry_run(call.params)
    try:
        subnets.delete_subnet(call.ctx, str(subnet.pk))
    except errors.Conflict as exc:
        raise Ec2Error("DependencyViolation", exc.message) from None
    return {}
