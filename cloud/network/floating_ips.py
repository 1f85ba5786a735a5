"""Neutron v2.0 floating IPs: an address of an external network, held by a port on it
(device_owner network:floatingip), and mapped to a fixed address of one of the project's ports.

A port can be given a floating IP only when its subnet is attached to a router whose gateway is on
the floating IP's network (else 404 ExternalGatewayForFloatingIPNotFound, as in Neutron); that
router then carries the mapping and is told of every change. The status is ACTIVE while the
address is mapped, DOWN otherwise.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from . import common, dataplane, ipam, quotas
from .models import FloatingIp, Port
from .networks import get_network
from .ports import disassociate, get_port
from .routers import routers_reaching


def visible_floating_ips(ctx: RequestContext) -> QuerySet[FloatingIp]:
    fips = FloatingIp.objects.all()
    return fips if ctx.is_admin else fips.filter(project_id=ctx.project_id)


_NOTHING = uuid.UUID(int=0)


def _id_or_null(value: str) -> uuid.UUID | None:
    """"" asks for floating IPs without one; a value that is no UUID matches none."""
    if value in ("", "None", "null"):
        return None
    found = common.ids([value])
    return found[0] if found else _NOTHING


_FIP_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "floating_ip_address": ("floating_ip_address", str),
    "floating_network_id": ("floating_network_id", common.ids),
    "fixed_ip_address": ("fixed_ip_address", common.nullable),
    "port_id": ("port_id", lambda v: _id_or_null(v)),
    "router_id": ("router_id", lambda v: _id_or_null(v)),
    "status": ("status", str),
    "description": ("description", str),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
}


def list_floating_ips(ctx: RequestContext, filters: common.Filters) -> list[FloatingIp]:
    common.authorize_read(ctx)
    return list(common.filter_by(visible_floating_ips(ctx), filters, _FIP_FILTERS))


def get_floating_ip(ctx: RequestContext, fip_id: object) -> FloatingIp:
    common.authorize_read(ctx)
    return common.one(visible_floating_ips(ctx), fip_id, "FloatingIPNotFound", "Floating IP")


def _associate(ctx: RequestContext, fip: FloatingIp, port_id: object, fixed_ip: object) -> None:
    """Map `fip` onto a fixed address of the port (its only IPv4 one unless `fixed_ip` says)."""
    port = get_port(ctx, common.uuid_value(port_id, "port_id"))
    if port.project_id != fip.project_id and not ctx.is_admin:
        raise common.not_found("PortNotFound", "Port", port_id)
    if port.network_id == fip.floating_network_id:
        raise errors.BadRequest(f"Bad floatingip request: Port {port.id} is on the floating "
                                "IP's own network.", neutron_type="BadRequest")
    addresses = [e["ip_address"] for e in port.fixed_ips or []]
    if fixed_ip is not None:
        address = str(common.ipv4(fixed_ip, "fixed_ip_address"))
        if address not in addresses:
            raise errors.BadRequest(f"Bad floatingip request: Port {port.id} does not have fixed "
                                    f"ip {address}.", neutron_type="BadRequest")
    elif len(addresses) == 1:
        address = addresses[0]
    elif not addresses:
        raise errors.BadRequest(f"Bad floatingip request: Port {port.id} does not have any IP "
                                "addresses on it.", neutron_type="BadRequest")
    else:
        raise errors.BadRequest(f"Bad floatingip request: Port {port.id} has multiple fixed IPv4 "
                                "addresses. Must provide a specific IPv4 address when assigning "
                                "a floating IP.", neutron_type="BadRequest")
    taken = FloatingIp.objects.filter(port=port, fixed_ip_address=address).exclude(pk=fip.pk)
    if taken.exists():
        raise errors.Conflict(
            f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
            f"{port.id} using fixed IP {address}, as that fixed IP already has a floating IP on "
            f"external network {fip.floating_network_id}.",
            neutron_type="FloatingIPPortAlreadyAssociated")
    router = routers_reaching(port, address, fip.floating_network)
    if router is None:
        subnet_id = next(e["subnet_id"] for e in port.fixed_ips if e["ip_address"] == address)
        raise errors.NotFound(
            f"External network {fip.floating_network_id} is not reachable from subnet "
            f"{subnet_id}.  Therefore, cannot associate Port {port.id} with a Floating IP.",
            neutron_type="ExternalGatewayForFloatingIPNotFound")
    old_router = fip.router_id
    fip.port, fip.fixed_ip_address, fip.router, fip.status = port, address, router, "ACTIVE"
    fip.save()
    if old_router and old_router != router.id:
        dataplane.notify_router(str(old_router))
    dataplane.notify_router(str(router.id))


_ATTRS = ("floating_network_id", "floating_ip_address", "subnet_id", "port_id",
          "fixed_ip_address", "description", "project_id", "tenant_id", "dns_name",
          "dns_domain", "qos_policy_id")


def create_floating_ip(ctx: RequestContext, body: object) -> FloatingIp:
    common.authorize(ctx, "create_floatingip")
    data = common.attrs(body, _ATTRS)
    for name in ("dns_name", "dns_domain", "qos_policy_id"):
        if data.get(name) not in (None, ""):
            raise errors.BadRequest(f"The attribute {name} is not supported.")
    if data.get("floating_network_id") is None:
        raise errors.BadRequest("Failed to parse request. Required attribute "
                                "'floating_network_id' not specified")
    network = get_network(ctx, common.uuid_value(data["floating_network_id"],
                                                 "floating_network_id"))
    if not network.external:
        raise errors.BadRequest(f"Bad floatingip request: Network {network.id} is not a valid "
                                "external network.", neutron_type="BadRequest")
    project_id = common.owner_of(ctx, data)
    request: dict[str, str] = {}
    if data.get("subnet_id") is not None:
        request["subnet_id"] = common.uuid_value(data["subnet_id"], "subnet_id")
    if data.get("floating_ip_address") is not None:
        request["ip_address"] = str(common.ipv4(data["floating_ip_address"],
                                                "floating_ip_address"))
    with transaction.atomic():
        quotas.check(project_id, "floatingip")
        locked = ipam.lock(network)
        fixed = ipam.assign(locked, [request] if request else None)
        if not fixed:
            raise errors.BadRequest(f"Bad floatingip request: Network {network.id} has no "
                                    "subnet.", neutron_type="BadRequest")
        fip = FloatingIp(project_id=project_id, floating_network=locked,
                         floating_ip_address=fixed[0]["ip_address"],
                         description=common.text(data, "description", max_len=1024))
        fip.floating_port = ipam.create_port(
            locked, fixed_ips=fixed, project_id=None, device_id=str(fip.id),
            device_owner=common.FLOATING_IP, status="N/A", port_security_enabled=False)
        fip.save()
        if data.get("port_id") is not None:
            _associate(ctx, fip, data["port_id"], data.get("fixed_ip_address"))
        elif data.get("fixed_ip_address") is not None:
            raise errors.BadRequest("fixed_ip_address cannot be given without a port_id.")
    return fip


def update_floating_ip(ctx: RequestContext, fip_id: str, body: object) -> FloatingIp:
    fip = get_floating_ip(ctx, fip_id)
    common.authorize(ctx, "update_floatingip")
    data = common.attrs(body, ("port_id", "fixed_ip_address", "description", "qos_policy_id"),
                        read_only=("floating_network_id", "floating_ip_address", "subnet_id"))
    with transaction.atomic():
        fip = FloatingIp.objects.select_for_update().get(pk=fip.pk)
        if "description" in data:
            fip.description = common.text(data, "description", max_len=1024)
            fip.save(update_fields=["description", "updated_at"])
        if "port_id" in data:
            if data["port_id"] is None:
                if fip.port_id is not None:
                    disassociate(fip)
            else:
                _associate(ctx, fip, data["port_id"], data.get("fixed_ip_address"))
        elif data.get("fixed_ip_address") is not None:
            if fip.port_id is None:
                raise errors.BadRequest("fixed_ip_address cannot be given without a port_id.")
            _associate(ctx, fip, fip.port_id, data["fixed_ip_address"])
    return get_floating_ip(ctx, fip_id)


def delete_floating_ip(ctx: RequestContext, fip_id: str) -> None:
    fip = get_floating_ip(ctx, fip_id)
    common.authorize(ctx, "delete_floatingip")
    with transaction.atomic():
        fip = FloatingIp.objects.select_for_update().get(pk=fip.pk)
        router_id = fip.router_id
        port_id = fip.floating_port_id
        fip.delete()
        Port.objects.filter(pk=port_id).delete()
        if router_id:
            dataplane.notify_router(str(router_id))


# --- for Nova's proxies (os-floating-ips, addFloatingIp, removeFloatingIp): by address and device


def by_address(ctx: RequestContext, address: str) -> FloatingIp:
    common.authorize_read(ctx)
    found = visible_floating_ips(ctx).filter(floating_ip_address=address).first()
    if found is None:
        raise errors.NotFound(f"floating IP not found for address {address}",
                              neutron_type="FloatingIPNotFound")
    return found


def associate_device(ctx: RequestContext, address: str, device_id: str,
                     fixed_address: str | None = None) -> FloatingIp:
    """Map the floating IP `address` onto the device's port that holds `fixed_address` (or its
    first port with an address); a device that cannot be reached from its network is a 400."""
    fip = by_address(ctx, address)
    ports = [p for p in Port.objects.filter(device_id=device_id).order_by("created_at")
             if p.fixed_ips]
    if fixed_address is not None:
        ports = [p for p in ports
                 if any(e["ip_address"] == fixed_address for e in p.fixed_ips)]
    if not ports:
        which = f"fixed IP {fixed_address}" if fixed_address else "fixed IP"
        raise errors.BadRequest(f"Instance {device_id} has no {which} to associate floating IP "
                                f"{address} with.")
    try:
        return update_floating_ip(ctx, str(fip.id), {
            "port_id": str(ports[0].id),
            "fixed_ip_address": fixed_address or ports[0].fixed_ips[0]["ip_address"]})
    except (errors.NotFound, errors.Conflict) as exc:
        # not reachable from the port, or the address already has a floating IP: Nova's 400
        raise errors.BadRequest(f"Unable to associate floating IP {address}: {exc.message}") \
            from None


def disassociate_device(ctx: RequestContext, address: str, device_id: str) -> FloatingIp:
    fip = by_address(ctx, address)
    if fip.port is None or fip.port.device_id != device_id:
        raise errors.Conflict(f"Floating IP {address} is not associated with instance "
                              f"{device_id}.")
    return update_floating_ip(ctx, str(fip.id), {"port_id": None})
