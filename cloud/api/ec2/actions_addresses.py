"""Elastic IP addresses: AllocateAddress, DescribeAddresses, AssociateAddress,
DisassociateAddress and ReleaseAddress, over Neutron's floating IPs
(cloud/network/floating_ips.py) with the network API's policy.

Ids: an address's allocation id is `eipalloc-` and its floating IP's uuid, its association id
`eipassoc-` and the same uuid (a floating IP maps onto one port at a time, so the pair names the
mapping; a new association of the same address has the same id, which EC2 clients never compare).
A network interface is `eni-` and its Neutron port's uuid. Every address is of the `vpc` domain.

An address comes from the external network Nova's os-floating-ips takes when no pool is named:
the first (by name) the project sees; `PublicIpv4Pool` names another by name. It can be mapped
onto an instance only when the instance's network reaches that external network through a router
(Neutron's rule), else EC2's Gateway.NotAttached.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from cloud import errors
from cloud.compute.models import Instance
from cloud.identity.context import RequestContext
from cloud.ids import ec2_id
from cloud.network import common as network_common
from cloud.network import floating_ips, networks
from cloud.network.models import FloatingIp, Port

from . import listing, resources, tags
from .actions_instances import dry_run
from .actions_security_groups import owner_id
from .errors import Ec2Error, invalid, translate
from .params import Params
from .registry import Call, action

READ, WRITE = "network:get", "network:write"
NETWORK_INTERFACE = ("eni", "InvalidNetworkInterfaceID.NotFound", "network interface ID")

FILTERS: listing.Filters = {
    "allocation-id": listing.path("allocationId"),
    "association-id": listing.path("associationId"),
    "instance-id": listing.path("instanceId"),
    "public-ip": listing.path("publicIp"),
    "private-ip-address": listing.path("privateIpAddress"),
    "domain": listing.path("domain"),
    "network-interface-id": listing.path("networkInterfaceId"),
    "network-interface-owner-id": listing.path("networkInterfaceOwnerId"),
    "public-ipv4-pool": listing.path("publicIpv4Pool"),
    "network-border-group": listing.path("networkBorderGroup"),
}


def association_id(fip: FloatingIp) -> str:
    return ec2_id("eipassoc", fip.pk)


def own_addresses(ctx: RequestContext) -> QuerySet[FloatingIp]:
    """The project's floating IPs (an admin's EC2 account is their project too)."""
    network_common.authorize_read(ctx)  # Neutron's read check
    return FloatingIp.objects.filter(project_id=ctx.project_id).select_related(
        "port", "floating_network")


def _instance_of(port: Port | None) -> str | None:
    if port is None or not port.device_owner.startswith("compute:") or not port.device_id:
        return None
    return ec2_id("i", port.device_id)


def describe(fip: FloatingIp, tag_set: list[dict[str, str]]) -> dict[str, Any]:
    port = fip.port
    return {
        "publicIp": fip.floating_ip_address, "allocationId": ec2_id("eipalloc", fip.pk),
        "domain": "vpc", "publicIpv4Pool": fip.floating_network.name,
        "networkBorderGroup": settings.KUMO_REGION,
        "associationId": association_id(fip) if port is not None else None,
        "instanceId": _instance_of(port),
        "networkInterfaceId": ec2_id("eni", port.pk) if port is not None else None,
        "networkInterfaceOwnerId": owner_id(port.project_id) if port is not None else None,
        "privateIpAddress": fip.fixed_ip_address if port is not None else None,
        "tagSet": tag_set,
    }


def find_address(ctx: RequestContext, params: Params) -> FloatingIp:
    """The address an AllocationId or a PublicIp names."""
    allocation = params.get("AllocationId")
    public_ip = params.get("PublicIp")
    mine = own_addresses(ctx)
    if allocation:
        return resources.find(resources.ADDRESS, allocation, mine)
    if public_ip:
        found = mine.filter(floating_ip_address=public_ip).first()
        if found is None:
            raise Ec2Error("InvalidAddress.NotFound",
                           f"Address '{public_ip}' not found.")
        return found
    raise Ec2Error("MissingParameter", "The request must contain the parameter AllocationId or "
                   "PublicIp.")


def _pool(ctx: RequestContext, name: str | None) -> str:
    pools = networks.visible_networks(ctx).filter(external=True).order_by("name", "id")
    network = pools.filter(name=name).first() if name else pools.first()
    if network is None:
        if name:
            raise invalid("PublicIpv4Pool", name, "No external network of that name.")
        raise Ec2Error("AddressLimitExceeded", "This cloud has no external network to take an "
                       "address from.")
    return str(network.pk)


@action("AllocateAddress", WRITE)
def allocate_address(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    domain = call.params.get("Domain", "vpc")
    if domain not in ("vpc", "standard"):
        raise invalid("Domain", domain, "Use vpc.")
    if call.params.get("Address"):
        raise invalid("Address", call.params.get("Address"), "Kumo picks the address; "
                      "bringing your own is not supported.")
    wanted_tags = tags.tag_specifications(call.params, "elastic-ip")
    pool = _pool(ctx, call.params.get("PublicIpv4Pool"))
    dry_run(call.params)
    try:
        fip = floating_ips.create_floating_ip(ctx, {"floating_network_id": pool})
    except errors.Conflict as exc:  # the project's quota, or no address left on the network
        code = ("AddressLimitExceeded" if exc.neutron_type == "OverQuota"
                else "InsufficientAddressCapacity")
        raise Ec2Error(code, exc.message) from None
    if wanted_tags:
        tags.set_tags(ctx, resources.ADDRESS, fip.pk, wanted_tags)
    return {"publicIp": fip.floating_ip_address, "allocationId": ec2_id("eipalloc", fip.pk),
            "domain": "vpc", "publicIpv4Pool": fip.floating_network.name,
            "networkBorderGroup": settings.KUMO_REGION}


@action("DescribeAddresses", READ)
def describe_addresses(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    mine = own_addresses(ctx)
    chosen = list(mine)
    allocations = call.params.strings("AllocationId")
    public_ips = call.params.strings("PublicIp")
    chosen = resources.narrow(resources.ADDRESS, allocations, chosen)
    if public_ips:
        for address in public_ips:
            if not any(f.floating_ip_address == address for f in chosen):
                raise Ec2Error("InvalidAddress.NotFound", f"Address '{address}' not found.")
        chosen = [f for f in chosen if f.floating_ip_address in public_ips]
    tagged = tags.tags_for(resources.ADDRESS, [f.pk for f in chosen])
    items = [describe(f, tagged[str(f.pk)]) for f in chosen]
    return {"addressesSet": listing.apply(items, call.params, FILTERS)}


def _target_port(ctx: RequestContext, params: Params) -> Port:
    """The port an InstanceId (its first port with an address) or a NetworkInterfaceId names."""
    instance_id = params.get("InstanceId")
    interface_id = params.get("NetworkInterfaceId")
    if instance_id and interface_id:
        raise invalid("NetworkInterfaceId", interface_id, "Give InstanceId or "
                      "NetworkInterfaceId, not both.")
    if interface_id:
        ports = Port.objects.filter(project_id=ctx.project_id)
        return resources.find(NETWORK_INTERFACE, interface_id, ports)
    if not instance_id:
        raise Ec2Error("MissingParameter", "The request must contain the parameter InstanceId "
                       "or NetworkInterfaceId.")
    instance = resources.find(resources.INSTANCE, instance_id, Instance.objects.filter(
        project_id=ctx.project_id, deleted=False))
    private_ip = params.get("PrivateIpAddress")
    for port in Port.objects.filter(device_id=str(instance.pk)).order_by("created_at", "id"):
        addresses = [e.get("ip_address") for e in port.fixed_ips or []]
        if addresses and (private_ip is None or private_ip in addresses):
            return port
    raise Ec2Error("InvalidInstanceID", f"The instance '{instance_id}' has no network "
                   f"interface{' with address ' + private_ip if private_ip else ''} to map an "
                   "address onto.")


@action("AssociateAddress", WRITE)
def associate_address(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    fip = find_address(ctx, call.params)
    port = _target_port(ctx, call.params)
    reassociate = bool(call.params.flag("AllowReassociation", False))
    if fip.port_id is not None and fip.port_id != port.pk and not reassociate:
        raise Ec2Error("Resource.AlreadyAssociated", f"resource {ec2_id('eipalloc', fip.pk)} is "
                       "already associated with associate-id " + association_id(fip))
    body: dict[str, Any] = {"port_id": str(port.pk)}
    private_ip = call.params.get("PrivateIpAddress")
    addresses = [e.get("ip_address") for e in port.fixed_ips or []]
    if private_ip:
        if private_ip not in addresses:
            raise invalid("PrivateIpAddress", private_ip, "The network interface has no such "
                          "address.")
        body["fixed_ip_address"] = private_ip
    elif addresses:
        v4 = [a for a in addresses if a and ":" not in a]
        if v4:
            body["fixed_ip_address"] = v4[0]
    dry_run(call.params)
    try:
        floating_ips.update_floating_ip(ctx, str(fip.pk), body)
    except errors.NotFound as exc:
        if exc.neutron_type == "ExternalGatewayForFloatingIPNotFound":
            raise Ec2Error("Gateway.NotAttached", exc.message) from None
        raise translate(exc) from None
    except errors.Conflict as exc:
        raise Ec2Error("Resource.AlreadyAssociated", exc.message) from None
    return {"associationId": association_id(fip)}


@action("DisassociateAddress", WRITE)
def disassociate_address(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    association = call.params.get("AssociationId")
    if association:
        fip = resources.find(resources.ASSOCIATION, association,
                             own_addresses(ctx).exclude(port=None))
    elif call.params.get("PublicIp"):
        fip = find_address(ctx, call.params)
        if fip.port_id is None:
            # EC2 answers success for an address mapped nowhere (the outcome asked for)
            return {"return": True}
    else:
        raise Ec2Error("MissingParameter", "The request must contain the parameter "
                       "AssociationId or PublicIp.")
    dry_run(call.params)
    floating_ips.update_floating_ip(ctx, str(fip.pk), {"port_id": None})
    return {"return": True}


@action("ReleaseAddress", WRITE)
def release_address(call: Call) -> dict[str, Any]:
    ctx = call.ctx
    fip = find_address(ctx, call.params)
    if fip.port_id is not None:
        raise Ec2Error("InvalidIPAddress.InUse", f"Address {fip.floating_ip_address} is in use: "
                       f"disassociate {association_id(fip)} first.")
    dry_run(call.params)
    floating_ips.delete_floating_ip(ctx, str(fip.pk))
    return {"return": True}
