"""Neutron v2.0 subnets: IPv4 ranges of a network, their pools, gateway, DNS servers and routes.

Only the network's owner (or an admin) adds subnets to it. A subnet's CIDR may not overlap another
of the same network; its allocation pools lie inside the CIDR (not on its network or broadcast
address), do not overlap each other and leave the gateway out. A subnet that a port holds an
address in cannot be deleted (409 SubnetInUse). Addresses themselves are ipam's.
"""

from __future__ import annotations

import ipaddress
import itertools

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from . import common, dataplane, ipam, quotas
from .models import Port, Subnet
from .networks import get_network, visible_networks

MAX_DNS = 5
MAX_ROUTES = 20
IPv4Net = ipaddress.IPv4Network


def visible_subnets(ctx: RequestContext) -> QuerySet[Subnet]:
    return Subnet.objects.filter(network__in=visible_networks(ctx)).select_related("network")


_SUBNET_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "name": ("name", str),
    "network_id": ("network_id", common.ids),
    "cidr": ("cidr", str),
    "ip_version": ("ip_version", int),
    "gateway_ip": ("gateway_ip", common.nullable),
    "enable_dhcp": ("enable_dhcp", common.as_bool),
    "description": ("description", str),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
}


def list_subnets(ctx: RequestContext, filters: common.Filters) -> list[Subnet]:
    common.authorize_read(ctx)
    return list(common.filter_by(visible_subnets(ctx), filters, _SUBNET_FILTERS))


def get_subnet(ctx: RequestContext, subnet_id: object) -> Subnet:
    common.authorize_read(ctx)
    return common.one(visible_subnets(ctx), subnet_id, "SubnetNotFound", "Subnet")


def holders(subnet: Subnet) -> list[Port]:
    """The ports that hold an address of the subnet."""
    sid = str(subnet.id)
    return [
        port for port in Port.objects.filter(network_id=subnet.network_id)
        if any(entry.get("subnet_id") == sid for entry in port.fixed_ips or [])
    ]


# --- validation


def _host_range(net: IPv4Net) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    if net.num_addresses <= 2:
        return net.network_address, net.broadcast_address
    return net.network_address + 1, net.broadcast_address - 1


def _gateway(value: object, net: IPv4Net) -> str | None:
    if value is None:
        return None
    address = common.ipv4(value, "gateway_ip")
    first, last = _host_range(net)
    if not first <= address <= last:
        raise errors.BadRequest(f"Invalid input for operation: Gateway is not valid on subnet "
                                f"({value} is not a host address of {net}).",
                                neutron_type="InvalidInput")
    return str(address)


def _pools(value: object, net: IPv4Net, gateway: str | None) -> list[dict]:
    raw = common.object_list(value, "allocation_pools")
    first, last = _host_range(net)
    ranges: list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = []
    for pool in raw:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise common.invalid("allocation_pools", pool, f"'{pool}' must be a start and an end")
        start, end = common.ipv4(pool["start"], "start"), common.ipv4(pool["end"], "end")
        if start > end:
            raise errors.BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet "
                                    f"cidr {net}.", neutron_type="InvalidAllocationPool")
        if not (first <= start and end <= last):
            raise errors.BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet "
                                    f"cidr {net}.", neutron_type="OutOfBoundsAllocationPool")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start <= end:
            raise errors.Conflict(f"Found overlapping allocation pools: {ranges}",
                                  neutron_type="OverlappingAllocationPools")
    if gateway is not None:
        gw = ipaddress.IPv4Address(gateway)
        for start, end in ranges:
            if start <= gw <= end:
                raise errors.Conflict(
                    f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}.",
                    neutron_type="GatewayConflictWithAllocationPools")
    return [{"start": str(s), "end": str(e)} for s, e in ranges]


def _dns(value: object) -> list[str]:
    servers = common.object_list(value, "dns_nameservers")
    if len(servers) > MAX_DNS:
        raise errors.BadRequest(f"Number of DNS nameservers exceeds the limit {MAX_DNS}.",
                                neutron_type="DNSNameServersExhausted")
    result = [str(common.ip_any(s, "dns_nameservers")) for s in servers]
    if len(set(result)) != len(result):
        raise common.invalid("dns_nameservers", value, "Duplicate nameserver.")
    return result


def _routes(value: object, name: str = "host_routes") -> list[dict]:
    routes = common.object_list(value, name)
    if len(routes) > MAX_ROUTES:
        raise errors.BadRequest(f"Number of routes exceeds the limit {MAX_ROUTES}.",
                                neutron_type="HostRoutesExhausted")
    result = []
    for route in routes:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise common.invalid(name, route, f"'{route}' must be a destination and a nexthop")
        destination = common.cidr(route["destination"], name, strict=False)
        nexthop = common.ip_any(route["nexthop"], name)
        entry = {"destination": str(destination), "nexthop": str(nexthop)}
        if entry in result:
            raise common.invalid(name, value, f"Duplicate route {entry}.")
        result.append(entry)
    return result


def _network_of(net: IPv4Net | ipaddress.IPv6Network) -> IPv4Net:
    if not isinstance(net, IPv4Net):
        raise errors.BadRequest("IPv6 subnets are not supported yet.")
    return net


_ATTRS = ("network_id", "cidr", "ip_version", "name", "description", "gateway_ip",
          "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp", "project_id",
          "tenant_id", "subnetpool_id", "ipv6_ra_mode", "ipv6_address_mode", "segment_id",
          "service_types", "use_default_subnetpool", "prefixlen")
_UPDATABLE = ("name", "description", "gateway_ip", "allocation_pools", "dns_nameservers",
              "host_routes", "enable_dhcp", "service_types", "segment_id")


def _unsupported(data: dict) -> None:
    for name in ("subnetpool_id", "ipv6_ra_mode", "ipv6_address_mode", "segment_id", "prefixlen"):
        if data.get(name) is not None:
            raise errors.BadRequest(f"The attribute {name} is not supported.")
    if data.get("service_types") not in (None, []) or data.get("use_default_subnetpool"):
        raise errors.BadRequest("Service types and subnet pools are not supported.")


def create_subnet(ctx: RequestContext, body: object) -> Subnet:
    data = common.attrs(body, _ATTRS)
    for required in ("network_id", "cidr"):
        if required not in data:
            raise errors.BadRequest(f"Failed to parse request. Required attribute '{required}' "
                                    "not specified")
    # The network first: another project's is missing (404) whatever the caller's role.
    network = get_network(ctx, common.uuid_value(data["network_id"], "network_id"))
    common.authorize(ctx, "create_subnet")
    _unsupported(data)
    ip_version = data.get("ip_version", 4)
    if ip_version not in (4, 6, "4", "6") or isinstance(ip_version, bool):
        raise common.invalid("ip_version", ip_version, f"{ip_version} is not in valid_values")
    if int(ip_version) == 6:
        raise errors.BadRequest("IPv6 subnets are not supported yet.")
    common.check_owner(ctx, network.project_id, "create_subnet")
    project_id = common.owner_of(ctx, data)
    net = _network_of(common.cidr(data["cidr"], "cidr"))
    if net.prefixlen == 0:
        raise common.invalid("cidr", data["cidr"], "a subnet must be smaller than the whole space")
    gateway = _gateway(data["gateway_ip"], net) if "gateway_ip" in data else str(
        _host_range(net)[0])
    pools = _pools(data["allocation_pools"], net, gateway) if data.get(
        "allocation_pools") is not None else []
    with transaction.atomic():
        locked = ipam.lock(network)
        for other in locked.subnets.all():
            if ipaddress.ip_network(other.cidr, strict=False).overlaps(net):
                raise errors.BadRequest(
                    f"Invalid input for operation: Requested subnet with cidr: {net} for "
                    f"network: {network.id} overlaps with another subnet.",
                    neutron_type="InvalidInput")
        quotas.check(project_id, "subnet")
        # The network's ports (its DHCP ports among them) now have one more subnet to serve.
        dataplane.notify_ports([str(p) for p in locked.ports.values_list("pk", flat=True)])
        return Subnet.objects.create(
            network=locked, project_id=project_id, cidr=str(net), ip_version=4,
            gateway_ip=gateway, allocation_pools=pools,
            name=common.text(data, "name"),
            description=common.text(data, "description", max_len=1024),
            enable_dhcp=common.boolean(data, "enable_dhcp", True),
            dns_nameservers=_dns(data.get("dns_nameservers") or []),
            host_routes=_routes(data.get("host_routes") or []),
        )


def _routers_on(subnet: Subnet) -> list[str]:
    """The routers with an interface on the subnet."""
    return sorted({p.device_id for p in holders(subnet) if p.device_owner == common.ROUTER_INTERFACE})


def update_subnet(ctx: RequestContext, subnet_id: str, body: object) -> Subnet:
    subnet = get_subnet(ctx, subnet_id)
    common.authorize(ctx, "update_subnet")
    common.check_owner(ctx, subnet.project_id or subnet.network.project_id, "update_subnet")
    data = common.attrs(body, _UPDATABLE, read_only=[a for a in _ATTRS if a not in _UPDATABLE])
    _unsupported(data)
    net = IPv4Net(subnet.cidr, strict=False)
    with transaction.atomic():
        ipam.lock(subnet.network)
        subnet = Subnet.objects.get(pk=subnet.pk)
        gateway_changed = False
        if "gateway_ip" in data:
            gateway = _gateway(data["gateway_ip"], net)
            if gateway != subnet.gateway_ip:
                if any(e.get("subnet_id") == str(subnet.id) and e.get("ip_address") == gateway
                       for p in holders(subnet) for e in p.fixed_ips) or _routers_on(subnet):
                    raise errors.Conflict(
                        f"Gateway {gateway} of subnet {subnet.id} is in use by a port or the "
                        "subnet is attached to a router.", neutron_type="GatewayIpInUse")
                gateway_changed = True
            subnet.gateway_ip = gateway
        if "allocation_pools" in data or gateway_changed:
            pools = data.get("allocation_pools", subnet.allocation_pools) or []
            subnet.allocation_pools = _pools(pools, net, subnet.gateway_ip) if pools else []
        if "name" in data:
            subnet.name = common.text(data, "name")
        if "description" in data:
            subnet.description = common.text(data, "description", max_len=1024)
        if "enable_dhcp" in data:
            subnet.enable_dhcp = common.boolean(data, "enable_dhcp", subnet.enable_dhcp)
        if "dns_nameservers" in data:
            subnet.dns_nameservers = _dns(data["dns_nameservers"] or [])
        if "host_routes" in data:
            subnet.host_routes = _routes(data["host_routes"] or [])
        subnet.save()
        dataplane.notify_ports([str(p.id) for p in holders(subnet)])
        if gateway_changed:
            for router_id in _routers_on(subnet):
                dataplane.notify_router(router_id)
    return get_subnet(ctx, subnet_id)


def delete_subnet(ctx: RequestContext, subnet_id: str) -> None:
    subnet = get_subnet(ctx, subnet_id)
    common.authorize(ctx, "delete_subnet")
    common.check_owner(ctx, subnet.project_id or subnet.network.project_id, "delete_subnet")
    with transaction.atomic():
        ipam.lock(subnet.network)
        if any(p.device_owner != common.DHCP for p in holders(subnet)):
            raise errors.Conflict(
                f"Unable to complete operation on subnet {subnet.id}: One or more ports have an "
                "IP allocation from this subnet.", neutron_type="SubnetInUse")
        sid = str(subnet.id)
        for port in holders(subnet):  # DHCP ports lose their address in it
            port.fixed_ips = [e for e in port.fixed_ips if e.get("subnet_id") != sid]
            port.save(update_fields=["fixed_ips", "updated_at"])
        subnet.delete()
        dataplane.notify_ports([str(p) for p in Port.objects.filter(
            network_id=subnet.network_id).values_list("pk", flat=True)])
