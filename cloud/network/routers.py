"""Neutron v2.0 routers: a gateway on an external network, interfaces on tenant subnets, extra
routes.

An interface is a port with device_owner network:router_interface and device_id the router's id,
holding the subnet's gateway address (add by subnet) or the address of a port the caller made (add
by port). The gateway is a port on the external network (network:router_gateway), its address from
the external subnet through ipam. A router with interfaces or floating IPs cannot be deleted
(409 RouterInUse); an extra route's nexthop must lie in a subnet the router is attached to.
"""

from __future__ import annotations

import ipaddress

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from . import common, dataplane, ipam, quotas
from .models import FloatingIp, Network, Port, Router, Subnet
from .networks import get_network
from .ports import get_port, remove_port
from .subnets import _routes, get_subnet


def visible_routers(ctx: RequestContext) -> QuerySet[Router]:
    routers = Router.objects.all()
    return routers if ctx.is_admin else routers.filter(project_id=ctx.project_id)


_ROUTER_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "name": ("name", str),
    "description": ("description", str),
    "status": ("status", str),
    "admin_state_up": ("admin_state_up", common.as_bool),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
}


def list_routers(ctx: RequestContext, filters: common.Filters) -> list[Router]:
    common.authorize_read(ctx)
    return list(common.filter_by(visible_routers(ctx), filters, _ROUTER_FILTERS))


def get_router(ctx: RequestContext, router_id: object) -> Router:
    common.authorize_read(ctx)
    return common.one(visible_routers(ctx), router_id, "RouterNotFound", "Router")


def interfaces(router: Router) -> QuerySet[Port]:
    return Port.objects.filter(device_owner=common.ROUTER_INTERFACE, device_id=str(router.id))


def gateway_port(router: Router) -> Port | None:
    return Port.objects.filter(device_owner=common.ROUTER_GATEWAY, device_id=str(router.id)).first()


def attached_subnets(router: Router) -> list[Subnet]:
    ids = [e["subnet_id"] for p in interfaces(router) for e in p.fixed_ips if e.get("subnet_id")]
    return list(Subnet.objects.filter(pk__in=ids))


def gateway_info(router: Router) -> dict | None:
    if router.external_network_id is None:
        return None
    port = gateway_port(router)
    return {
        "network_id": str(router.external_network_id),
        "enable_snat": router.enable_snat,
        "external_fixed_ips": list(port.fixed_ips) if port else [],
    }


# --- gateway


def _set_gateway(ctx: RequestContext, router: Router, info: object) -> None:
    """Set, change or clear (info None or {}) the router's external gateway."""
    if info is not None and not isinstance(info, dict):
        raise common.invalid("external_gateway_info", info, "must be an object")
    info = common.attrs(info or {}, ("network_id", "enable_snat", "external_fixed_ips",
                                     "qos_policy_id"))
    current = gateway_port(router)
    if not info or info.get("network_id") is None:
        if current is None:
            return
        if FloatingIp.objects.filter(router=router).exists():
            raise errors.Conflict(
                f"Gateway cannot be updated for router {router.id}, since a gateway to external "
                f"network {router.external_network_id} is required by one or more floating IPs.",
                neutron_type="RouterExternalGatewayInUseByFloatingIp")
        current.delete()
        router.external_network = None
        router.enable_snat = True
        return
    network = get_network(ctx, common.uuid_value(info["network_id"], "network_id"))
    if not network.external:
        raise errors.BadRequest(f"Network {network.id} is not a valid external network",
                                neutron_type="BadRequest")
    if "enable_snat" in info:
        snat = common.boolean(info, "enable_snat", True)
        if not snat and not ctx.is_admin:
            raise errors.Forbidden("rule:create_router:external_gateway_info:enable_snat is "
                                   "disallowed by policy", neutron_type="PolicyNotAuthorized")
        router.enable_snat = snat
    requests = None
    if info.get("external_fixed_ips"):
        if not ctx.is_admin:
            raise errors.Forbidden("rule:create_router:external_gateway_info:external_fixed_ips "
                                   "is disallowed by policy", neutron_type="PolicyNotAuthorized")
        from .ports import _fixed_ips  # the same reader as a port's fixed_ips

        requests = _fixed_ips(info["external_fixed_ips"])
    if current is not None and current.network_id == network.id and requests is None:
        return
    if current is not None and current.network_id != network.id and FloatingIp.objects.filter(
            router=router).exists():
        raise errors.Conflict(
            f"Gateway cannot be updated for router {router.id}, since a gateway to external "
            f"network {router.external_network_id} is required by one or more floating IPs.",
            neutron_type="RouterExternalGatewayInUseByFloatingIp")
    locked = ipam.lock(network)
    if current is not None:
        if current.network_id == network.id:
            current.fixed_ips = ipam.assign(locked, requests, port=current)
            current.save(update_fields=["fixed_ips", "updated_at"])
            return
        current.delete()
    fixed = ipam.assign(locked, requests)
    if not fixed:
        raise errors.BadRequest(f"No subnet on external network {network.id} for the gateway.")
    ipam.create_port(locked, fixed_ips=fixed, project_id=None, device_id=str(router.id),
                     device_owner=common.ROUTER_GATEWAY, status="ACTIVE",
                     port_security_enabled=False)
    router.external_network = network


# --- routers


_ATTRS = ("name", "description", "admin_state_up", "external_gateway_info", "project_id",
          "tenant_id", "distributed", "ha", "availability_zone_hints", "flavor_id")
_UPDATABLE = ("name", "description", "admin_state_up", "external_gateway_info", "routes",
              "distributed", "ha")


def _extras(data: dict) -> None:
    for name in ("distributed", "ha"):
        if data.get(name):
            raise errors.BadRequest(f"{name} routers are not supported.")
    if data.get("availability_zone_hints") not in (None, []) or data.get("flavor_id"):
        raise errors.BadRequest("Router availability zones and flavors are not supported.")


def create_router(ctx: RequestContext, body: object) -> Router:
    common.authorize(ctx, "create_router")
    data = common.attrs(body, _ATTRS)
    _extras(data)
    project_id = common.owner_of(ctx, data)
    with transaction.atomic():
        quotas.check(project_id, "router")
        router = Router.objects.create(
            project_id=project_id, name=common.text(data, "name"),
            description=common.text(data, "description", max_len=1024),
            admin_state_up=common.boolean(data, "admin_state_up", True),
        )
        if data.get("external_gateway_info"):
            _set_gateway(ctx, router, data["external_gateway_info"])
            router.save()
        dataplane.notify_router(str(router.id))
    return router


def _check_routes(router: Router, routes: list[dict]) -> None:
    nets = [ipaddress.ip_network(s.cidr, strict=False) for s in attached_subnets(router)]
    own = {e["ip_address"] for p in interfaces(router) for e in p.fixed_ips}
    for route in routes:
        nexthop = ipaddress.ip_address(route["nexthop"])
        if not any(nexthop in net for net in nets) or route["nexthop"] in own:
            raise errors.BadRequest(
                f"Invalid format for routes: {route}, the nexthop is not connected with router",
                neutron_type="InvalidRoutes")


def update_router(ctx: RequestContext, router_id: str, body: object) -> Router:
    router = get_router(ctx, router_id)
    common.authorize(ctx, "update_router")
    data = common.attrs(body, _UPDATABLE, read_only=[a for a in _ATTRS if a not in _UPDATABLE])
    _extras(data)
    with transaction.atomic():
        router = Router.objects.select_for_update().get(pk=router.pk)
        if "name" in data:
            router.name = common.text(data, "name")
        if "description" in data:
            router.description = common.text(data, "description", max_len=1024)
        if "admin_state_up" in data:
            router.admin_state_up = common.boolean(data, "admin_state_up", router.admin_state_up)
        if "routes" in data:
            routes = _routes(data["routes"] or [], "routes")
            _check_routes(router, routes)
            router.routes = routes
        if "external_gateway_info" in data:
            _set_gateway(ctx, router, data["external_gateway_info"])
        router.save()
        dataplane.notify_router(str(router.id))
    return router


def delete_router(ctx: RequestContext, router_id: str) -> None:
    router = get_router(ctx, router_id)
    common.authorize(ctx, "delete_router")
    with transaction.atomic():
        router = Router.objects.select_for_update().get(pk=router.pk)
        if interfaces(router).exists() or FloatingIp.objects.filter(router=router).exists():
            raise errors.Conflict(f"Router {router.id} still has ports",
                                  neutron_type="RouterInUse")
        port = gateway_port(router)
        if port is not None:
            port.delete()
        dataplane.notify_router_removed(str(router.id), router.host)
        router.delete()


# --- interfaces


def _interface_body(router: Router, port: Port) -> dict:
    subnet_ids = [e["subnet_id"] for e in port.fixed_ips]
    return {
        "id": str(router.id),
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
        "port_id": str(port.id),
        "network_id": str(port.network_id),
        "tenant_id": router.project_id or "",
        "project_id": router.project_id or "",
    }


def _check_overlap(router: Router, subnet: Subnet) -> None:
    net = ipaddress.ip_network(subnet.cidr, strict=False)
    for other in attached_subnets(router):
        if other.id == subnet.id:
            raise errors.BadRequest(f"Router already has a port on subnet {subnet.id}.",
                                    neutron_type="BadRequest")
        if ipaddress.ip_network(other.cidr, strict=False).overlaps(net):
            raise errors.BadRequest(
                f"Bad router request: Cidr {subnet.cidr} of subnet {subnet.id} overlaps with "
                f"cidr {other.cidr} of subnet {other.id}.", neutron_type="BadRequest")


def _interface_request(body: object) -> dict:
    data = common.attrs(body, ("subnet_id", "port_id"))
    if ("subnet_id" in data) == ("port_id" in data):
        raise errors.BadRequest("Bad router request: Either subnet_id or port_id must be "
                                "specified (and not both).", neutron_type="BadRequest")
    return data


def add_interface(ctx: RequestContext, router_id: str, body: object) -> dict:
    router = get_router(ctx, router_id)
    common.authorize(ctx, "add_router_interface")
    data = _interface_request(body)
    with transaction.atomic():
        router = Router.objects.select_for_update().get(pk=router.pk)
        if "subnet_id" in data:
            subnet = get_subnet(ctx, common.uuid_value(data["subnet_id"], "subnet_id"))
            common.check_owner(ctx, subnet.project_id or subnet.network.project_id,
                               "add_router_interface")
            if not subnet.gateway_ip:
                raise errors.BadRequest(f"Bad router request: Subnet {subnet.id} does not have "
                                        "a gateway IP.", neutron_type="BadRequest")
            _check_overlap(router, subnet)
            locked = ipam.lock(subnet.network)
            holder = next((p for p in Port.objects.filter(network=locked)
                           if any(e.get("ip_address") == subnet.gateway_ip
                                  for e in p.fixed_ips or [])), None)
            if holder is not None:
                raise errors.Conflict(
                    f"IP address {subnet.gateway_ip} already allocated in subnet {subnet.id}"
                    + (" (the subnet is attached to a router)"
                       if holder.device_owner == common.ROUTER_INTERFACE else ""),
                    neutron_type="IpAddressAlreadyAllocated")
            fixed = ipam.assign(locked, [{"subnet_id": str(subnet.id),
                                          "ip_address": subnet.gateway_ip}], allow_gateway=True)
            port = ipam.create_port(
                locked, fixed_ips=fixed, project_id=router.project_id, device_id=str(router.id),
                device_owner=common.ROUTER_INTERFACE, status="ACTIVE",
                port_security_enabled=False)
        else:
            port = get_port(ctx, common.uuid_value(data["port_id"], "port_id"))
            if port.device_id or port.device_owner:
                raise errors.Conflict(f"Unable to complete operation on port {port.id} for "
                                      f"network {port.network_id}. Port already has an attached "
                                      f"device {port.device_id}.", neutron_type="PortInUse")
            if not port.fixed_ips:
                raise errors.BadRequest(f"Bad router request: Router port {port.id} must have "
                                        "at least one fixed IP.", neutron_type="BadRequest")
            if len(port.fixed_ips) > 1:
                raise errors.BadRequest(f"Bad router request: Cannot have multiple IPv4 subnets "
                                        f"on router port {port.id}.", neutron_type="BadRequest")
            subnet = Subnet.objects.get(pk=port.fixed_ips[0]["subnet_id"])
            _check_overlap(router, subnet)
            groups = [str(g) for g in port.security_groups.values_list("pk", flat=True)]
            port.device_id, port.device_owner = str(router.id), common.ROUTER_INTERFACE
            port.status = "ACTIVE"
            port.save()
            port.security_groups.clear()
            if groups:
                dataplane.notify_groups(groups)
        dataplane.notify_router(str(router.id))
        return _interface_body(router, port)


def remove_interface(ctx: RequestContext, router_id: str, body: object) -> dict:
    router = get_router(ctx, router_id)
    common.authorize(ctx, "remove_router_interface")
    data = _interface_request(body)
    with transaction.atomic():
        router = Router.objects.select_for_update().get(pk=router.pk)
        if "port_id" in data:
            port_id = common.uuid_value(data["port_id"], "port_id")
            port = interfaces(router).filter(pk=port_id).first()
            if port is None:
                raise errors.NotFound(f"Router {router.id} does not have an interface with id "
                                      f"{port_id}", neutron_type="RouterInterfaceNotFound")
            subnet_ids = [e["subnet_id"] for e in port.fixed_ips]
            if "subnet_id" in data and data["subnet_id"] not in subnet_ids:
                raise errors.Conflict(f"Subnet {data['subnet_id']} is not on port {port_id}",
                                      neutron_type="SubnetMismatchForPort")
        else:
            subnet_id = common.uuid_value(data["subnet_id"], "subnet_id")
            port = next((p for p in interfaces(router)
                         if any(e.get("subnet_id") == subnet_id for e in p.fixed_ips)), None)
            if port is None:
                raise errors.NotFound(f"Router {router.id} has no interface on subnet "
                                      f"{subnet_id}",
                                      neutron_type="RouterInterfaceNotFoundForSubnet")
        subnets = list(Subnet.objects.filter(pk__in=[e["subnet_id"] for e in port.fixed_ips]))
        for subnet in subnets:
            net = ipaddress.ip_network(subnet.cidr, strict=False)
            for route in router.routes or []:
                if ipaddress.ip_address(route["nexthop"]) in net:
                    raise errors.Conflict(
                        f"Router interface for subnet {subnet.id} on router {router.id} cannot "
                        f"be deleted, as it is required by one or more routes.",
                        neutron_type="RouterInterfaceInUseByRoute")
            for fip in FloatingIp.objects.filter(router=router, port__network_id=subnet.network_id):
                if fip.fixed_ip_address and ipaddress.ip_address(fip.fixed_ip_address) in net:
                    raise errors.Conflict(
                        f"Router interface for subnet {subnet.id} on router {router.id} cannot "
                        f"be deleted, as it is required by one or more floating IPs.",
                        neutron_type="RouterInterfaceInUseByFloatingIP")
        answer = _interface_body(router, port)
        remove_port(port)
        dataplane.notify_router(str(router.id))
        return answer


def routers_reaching(port: Port, fixed_ip: str, external: Network) -> Router | None:
    """The router that connects `fixed_ip` of `port` to `external`: an interface on the subnet
    that holds the address, and a gateway on that external network."""
    subnet_id = next((e["subnet_id"] for e in port.fixed_ips if e["ip_address"] == fixed_ip), None)
    if subnet_id is None:
        return None
    router_ids = [p.device_id for p in Port.objects.filter(
        device_owner=common.ROUTER_INTERFACE, network_id=port.network_id)
        if any(e.get("subnet_id") == subnet_id for e in p.fixed_ips)]
    return Router.objects.filter(pk__in=common.ids(router_ids),
                                 external_network=external).order_by("created_at").first()
