"""Neutron v2.0 ports: an address (or none) on a network, a MAC, security groups, and who uses it.

A project sees only its own ports. A new port on a network with subnets gets an address from ipam
unless fixed_ips says otherwise; it is in the project's default group unless it names its groups
([] for none) or has port security off. Port security off and groups (or address pairs) together
are refused, as in Neutron. The ports the network service owns (router interfaces, gateways,
floating IPs) are not deleted through this API (409).
"""

from __future__ import annotations

import ipaddress
import re

from django.db import transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.identity.context import RequestContext

from . import common, dataplane, ipam, quotas
from . import security_groups as groups
from .models import FloatingIp, Network, Port, SecurityGroup
from .networks import get_network

MAX_PAIRS = 10
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def visible_ports(ctx: RequestContext) -> QuerySet[Port]:
    ports = Port.objects.all()
    if ctx.is_admin:
        return ports
    return ports.filter(project_id=ctx.project_id)


_PORT_FILTERS: common.FilterSpec = {
    "id": ("pk", common.ids),
    "name": ("name", str),
    "network_id": ("network_id", common.ids),
    "device_id": ("device_id", str),
    "device_owner": ("device_owner", str),
    "mac_address": ("mac_address", str),
    "status": ("status", str),
    "admin_state_up": ("admin_state_up", common.as_bool),
    "port_security_enabled": ("port_security_enabled", common.as_bool),
    "description": ("description", str),
    "binding:host_id": ("binding_host", str),
    "project_id": ("project_id", str),
    "tenant_id": ("project_id", str),
    "security_groups": ("security_groups", common.ids),
}


def _match_fixed_ips(port: Port, wanted: list[dict[str, str]]) -> bool:
    """Neutron's fixed_ips=ip_address=…&fixed_ips=subnet_id=… filter: any entry matches."""
    for want in wanted:
        for entry in port.fixed_ips or []:
            if "ip_address_substr" in want:
                if want["ip_address_substr"] in entry.get("ip_address", ""):
                    return True
            elif all(entry.get(k) == v for k, v in want.items()):
                return True
    return False


def list_ports(ctx: RequestContext, filters: common.Filters) -> list[Port]:
    common.authorize_read(ctx)
    found = common.filter_by(visible_ports(ctx), filters, _PORT_FILTERS).distinct()
    ports = list(found.prefetch_related("security_groups"))
    if filters.get("fixed_ips"):
        wanted = []
        for value in filters["fixed_ips"]:
            key, _, val = value.partition("=")
            if key not in ("ip_address", "subnet_id", "ip_address_substr"):
                raise errors.BadRequest(f"Invalid input for fixed_ips: {value}")
            wanted.append({key: val})
        ports = [p for p in ports if _match_fixed_ips(p, wanted)]
    return ports


def get_port(ctx: RequestContext, port_id: object) -> Port:
    common.authorize_read(ctx)
    return common.one(visible_ports(ctx).prefetch_related("security_groups"), port_id,
                      "PortNotFound", "Port")


# --- validation


def _mac(value: object) -> str:
    if isinstance(value, str) and _MAC.match(value.lower()):
        mac = value.lower()
        if int(mac[:2], 16) & 1 == 0 and mac != "00:00:00:00:00:00":
            return mac
    raise common.invalid("mac_address", value, f"'{value}' is not a valid MAC address")


def _fixed_ips(value: object) -> list[dict]:
    requests = []
    for entry in common.object_list(value, "fixed_ips"):
        if not isinstance(entry, dict) or not entry or set(entry) - {"subnet_id", "ip_address"}:
            raise common.invalid("fixed_ips", entry, f"'{entry}' must name a subnet_id or an "
                                 "ip_address")
        request = {}
        if entry.get("subnet_id") is not None:
            request["subnet_id"] = common.uuid_value(entry["subnet_id"], "subnet_id")
        if entry.get("ip_address") is not None:
            request["ip_address"] = str(common.ipv4(entry["ip_address"], "ip_address"))
        if not request:
            raise common.invalid("fixed_ips", entry, "a subnet_id or an ip_address is required")
        requests.append(request)
    addresses = [r["ip_address"] for r in requests if "ip_address" in r]
    if len(set(addresses)) != len(addresses):
        raise common.invalid("fixed_ips", value, "Duplicate IP address.")
    return requests


def _pairs(value: object, mac: str) -> list[dict]:
    pairs = common.object_list(value, "allowed_address_pairs")
    if len(pairs) > MAX_PAIRS:
        raise errors.BadRequest(f"The number of allowed address pair exceeds the maximum "
                                f"{MAX_PAIRS}.", neutron_type="AllowedAddressPairExhausted")
    result = []
    for pair in pairs:
        if not isinstance(pair, dict) or "ip_address" not in pair or set(pair) - {
                "ip_address", "mac_address"}:
            raise errors.BadRequest("AllowedAddressPair must contain ip_address",
                                    neutron_type="AllowedAddressPairsMissingIP")
        ip = pair["ip_address"]
        if isinstance(ip, str) and "/" in ip:
            address = str(common.cidr(ip, "allowed_address_pairs", strict=False))
        else:
            address = str(common.ip_any(ip, "allowed_address_pairs"))
        entry = {"ip_address": address,
                 "mac_address": _mac(pair["mac_address"]) if pair.get("mac_address") else mac}
        if entry in result:
            raise errors.BadRequest("Request contains duplicate address pair: "
                                    f"mac_address {entry['mac_address']} ip_address {address}.",
                                    neutron_type="DuplicateAddressPairInRequest")
        result.append(entry)
    return result


def _groups(project_id: str | None, value: object) -> list[SecurityGroup]:
    wanted = common.object_list(value, "security_groups")
    found = []
    for ident in wanted:
        group_id = common.uuid_value(ident, "security_groups")
        group = SecurityGroup.objects.filter(pk=group_id, project_id=project_id).first()
        if group is None:
            raise errors.NotFound(f"Security group {ident} does not exist",
                                  neutron_type="SecurityGroupNotFound")
        if group not in found:
            found.append(group)
    return found


def _security_rules(security: bool, groups_: list[SecurityGroup], pairs: list[dict],
                    has_address: bool) -> None:
    if not security and groups_:
        raise errors.BadRequest("Port security must be enabled and port must have an IP "
                                "address in order to use security groups.",
                                neutron_type="PortSecurityAndIPRequiredForSecurityGroups")
    if not security and pairs:
        raise errors.Conflict("Port Security must be enabled in order to have allowed address "
                              "pairs on a port.", neutron_type="AddressPairAndPortSecurityRequired")


_ATTRS = ("network_id", "name", "description", "fixed_ips", "mac_address", "security_groups",
          "port_security_enabled", "allowed_address_pairs", "device_id", "device_owner",
          "admin_state_up", "project_id", "tenant_id", "binding:host_id", "binding:vnic_type",
          "binding:profile", "extra_dhcp_opts", "qos_policy_id", "dns_name", "propagate_uplink_status")
_UPDATABLE = ("name", "description", "fixed_ips", "mac_address", "security_groups",
              "port_security_enabled", "allowed_address_pairs", "device_id", "device_owner",
              "admin_state_up", "binding:host_id", "binding:vnic_type", "binding:profile",
              "extra_dhcp_opts", "qos_policy_id", "dns_name")


def _extras(ctx: RequestContext, data: dict) -> None:
    if data.get("binding:vnic_type") not in (None, "normal"):
        raise common.invalid("binding:vnic_type", data["binding:vnic_type"],
                             "only normal is supported")
    if data.get("binding:profile") not in (None, {}):
        raise errors.BadRequest("binding:profile is not supported.")
    for name in ("extra_dhcp_opts", "qos_policy_id", "dns_name", "propagate_uplink_status"):
        if data.get(name) not in (None, [], "", False):
            raise errors.BadRequest(f"The attribute {name} is not supported.")
    if data.get("binding:host_id") not in (None, "") and not ctx.is_admin:
        raise errors.Forbidden("rule:create_port:binding:host_id is disallowed by policy",
                               neutron_type="PolicyNotAuthorized")


def create_port(ctx: RequestContext, body: object) -> Port:
    data = common.attrs(body, _ATTRS)
    if "network_id" not in data:
        raise errors.BadRequest("Failed to parse request. Required attribute 'network_id' not "
                                "specified")
    # The network first: another project's is missing (404) whatever the caller's role.
    network = get_network(ctx, common.uuid_value(data["network_id"], "network_id"))
    common.authorize(ctx, "create_port")
    _extras(ctx, data)
    if not network.shared:
        common.check_owner(ctx, network.project_id, "create_port")
    project_id = common.owner_of(ctx, data)
    mac = _mac(data["mac_address"]) if data.get("mac_address") is not None else None
    requests = _fixed_ips(data["fixed_ips"]) if data.get("fixed_ips") is not None else None
    device_owner = common.text(data, "device_owner")
    security = common.boolean(data, "port_security_enabled", network.port_security_enabled)
    if data.get("security_groups") is not None:
        chosen = _groups(project_id, data["security_groups"])
    elif security and not device_owner.startswith("network:") and project_id:
        chosen = [groups.default_group(project_id)]
    else:
        chosen = []
    pairs_value = data.get("allowed_address_pairs") or []
    _security_rules(security, chosen, pairs_value, True)
    with transaction.atomic():
        quotas.check(project_id, "port")
        locked = ipam.lock(network)
        fixed = ipam.assign(locked, requests)
        port = ipam.create_port(
            locked, fixed_ips=fixed, mac_address=mac, project_id=project_id,
            name=common.text(data, "name"),
            description=common.text(data, "description", max_len=1024),
            device_id=common.text(data, "device_id"), device_owner=device_owner,
            admin_state_up=common.boolean(data, "admin_state_up", True),
            port_security_enabled=security,
            binding_host=common.text(data, "binding:host_id"),
        )
        port.allowed_address_pairs = _pairs(pairs_value, port.mac_address)
        port.save(update_fields=["allowed_address_pairs"])
        port.security_groups.set(chosen)
        dataplane.notify_ports([str(port.id)])
        if chosen:
            dataplane.notify_groups([str(g.id) for g in chosen])
    return get_port(ctx, port.id)


def update_port(ctx: RequestContext, port_id: str, body: object) -> Port:
    port = get_port(ctx, port_id)
    common.authorize(ctx, "update_port")
    data = common.attrs(body, _UPDATABLE, read_only=[a for a in _ATTRS if a not in _UPDATABLE])
    _extras(ctx, data)
    with transaction.atomic():
        locked = ipam.lock(port.network)
        port = Port.objects.select_for_update().get(pk=port.pk)
        before = {str(g) for g in port.security_groups.values_list("pk", flat=True)}
        old_host = port.binding_host
        security = common.boolean(data, "port_security_enabled", port.port_security_enabled)
        if "security_groups" in data:
            chosen = _groups(port.project_id, data["security_groups"] or [])
        else:
            chosen = list(port.security_groups.all())
        if "allowed_address_pairs" in data:
            pairs = _pairs(data["allowed_address_pairs"] or [], port.mac_address)
        else:
            pairs = list(port.allowed_address_pairs or [])
        if not security and "security_groups" not in data and chosen:
            raise errors.Conflict("Port has security group associated. Cannot disable port "
                                  "security or ip address until security group is removed",
                                  neutron_type="PortSecurityPortHasSecurityGroup")
        _security_rules(security, chosen, pairs, True)
        if "fixed_ips" in data:
            requests = _fixed_ips(data["fixed_ips"] or [])
            # An address the port already holds stays its own (ipam excludes the port itself).
            port.fixed_ips = ipam.assign(locked, requests, port=port)
        if "mac_address" in data:
            if not ctx.is_admin:
                raise errors.Forbidden("rule:update_port:mac_address is disallowed by policy",
                                       neutron_type="PolicyNotAuthorized")
            mac = _mac(data["mac_address"])
            if mac != port.mac_address and Port.objects.filter(mac_address=mac).exists():
                raise ipam.MacInUse(f"Unable to complete operation for network "
                                    f"{port.network_id}. The mac address {mac} is in use.")
            port.mac_address = mac
        for name, field in (("name", "name"), ("device_id", "device_id"),
                            ("device_owner", "device_owner"), ("binding:host_id", "binding_host")):
            if name in data:
                setattr(port, field, common.text(data, name))
        if "description" in data:
            port.description = common.text(data, "description", max_len=1024)
        if "admin_state_up" in data:
            port.admin_state_up = common.boolean(data, "admin_state_up", port.admin_state_up)
        port.port_security_enabled = security
        port.allowed_address_pairs = pairs
        port.save()
        port.security_groups.set(chosen)
        if "fixed_ips" in data:
            _follow_addresses(port)
        if old_host and old_host != port.binding_host:
            dataplane.notify_port_removed(str(port.id), old_host)
        dataplane.notify_ports([str(port.id)])
        after = {str(g.id) for g in chosen}
        if before != after or "fixed_ips" in data:
            dataplane.notify_groups(sorted(before | after))
    return get_port(ctx, port_id)


def _follow_addresses(port: Port) -> None:
    """Floating IPs on an address the port no longer has come off it."""
    held = {e["ip_address"] for e in port.fixed_ips}
    for fip in FloatingIp.objects.filter(port=port).exclude(fixed_ip_address__in=held):
        disassociate(fip)


def disassociate(fip: FloatingIp) -> None:
    router_id = fip.router_id
    fip.port, fip.fixed_ip_address, fip.router, fip.status = None, None, None, "DOWN"
    fip.save()
    if router_id:
        dataplane.notify_router(str(router_id))


def delete_port(ctx: RequestContext, port_id: str) -> None:
    port = get_port(ctx, port_id)
    common.authorize(ctx, "delete_port")
    if port.device_owner in common.L3_OWNERS and port.device_id:
        raise errors.Conflict(
            f"Port {port.id} cannot be deleted directly via the port API: has device owner "
            f"{port.device_owner}.", neutron_type="L3PortInUse")
    remove_port(port)


def remove_port(port: Port) -> None:
    """Delete a port, taking its floating IPs off it and telling the data plane."""
    with transaction.atomic():
        ipam.lock(Network(pk=port.network_id))
        group_ids = [str(g) for g in port.security_groups.values_list("pk", flat=True)]
        for fip in FloatingIp.objects.filter(port=port):
            disassociate(fip)
        if port.binding_host:
            dataplane.notify_port_removed(str(port.id), port.binding_host)
        port.delete()
        if group_ids:
            dataplane.notify_groups(group_ids)


def first_ipv4(port: Port) -> str | None:
    for entry in port.fixed_ips or []:
        try:
            if isinstance(ipaddress.ip_address(entry.get("ip_address")), ipaddress.IPv4Address):
                return entry["ip_address"]
        except (TypeError, ValueError):
            continue
    return None
