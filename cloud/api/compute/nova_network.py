"""The networking APIs Nova proxied to the network service until 2.35 (404 from 2.36): the networks
a project may use (os-networks, os-tenant-networks) read from Kumo's network API; floating IPs and
their pools (os-floating-ips, os-floating-ip-pools: the external networks) over the Network
API's floating IPs; the project's security groups and their rules (os-security-groups,
os-security-group-rules) over the network's own (cloud/network/security_groups.py); in Nova's
shapes, Neutron's conflicts answered with 400 as Nova's proxy does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.ids import parse_uuid
from cloud.network import common as net_common
from cloud.network import floating_ips, networks
from cloud.network import security_groups as groups
from cloud.network.models import FloatingIp, Network, SecurityGroup

from ..base import ComputeView
from .security_groups import _rule_body, group_body

_ADMIN_FIELDS = ("created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge",
                 "vlan", "vpn_public_address", "vpn_public_port", "vpn_private_address",
                 "dhcp_start", "project_id", "host", "bridge_interface", "multi_host", "priority",
                 "rxtx_base", "mtu", "dhcp_server", "enable_dhcp", "share_address")
_FIELDS = ("cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6",
           "netmask_v6")


class _ProxyView(ComputeView):
    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if self.version.at_least("2.36"):
            raise errors.NotFound("The resource could not be found.")

    def network(self, network_id: str) -> Network:
        try:
            return networks.get_network(self.ctx, network_id)
        except errors.NotFound:
            raise errors.NotFound("Network not found") from None


def _network_body(network: Network, is_admin: bool) -> dict:
    body: dict = {"id": str(network.id), "label": network.name}
    body.update(dict.fromkeys(_FIELDS))
    if is_admin:
        body.update(dict.fromkeys(_ADMIN_FIELDS))
    return body


def _tenant_network_body(network: Network) -> dict:
    return {"id": str(network.id), "cidr": "None", "label": network.name}


class NetworkList(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        found = networks.visible_networks(self.ctx).order_by("name")
        return Response({"networks": [_network_body(n, self.ctx.is_admin) for n in found]})


class NetworkItem(_ProxyView):
    def get(self, request: Request, network_id: str) -> Response:
        self.authorize("compute:networks:index")
        return Response({"network": _network_body(self.network(network_id), self.ctx.is_admin)})


class TenantNetworkList(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        found = networks.visible_networks(self.ctx).order_by("name")
        return Response({"networks": [_tenant_network_body(n) for n in found]})


class TenantNetworkItem(_ProxyView):
    def get(self, request: Request, network_id: str) -> Response:
        self.authorize("compute:networks:index")
        return Response({"network": _tenant_network_body(self.network(network_id))})


class FloatingIpPools(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        pools = networks.visible_networks(self.ctx).filter(external=True).order_by("name")
        return Response({"floating_ip_pools": [{"name": n.name} for n in pools]})


def _nova_floating_ip(fip: FloatingIp) -> dict:
    port = fip.port
    return {"id": str(fip.id), "ip": fip.floating_ip_address, "pool": fip.floating_network.name,
            "fixed_ip": fip.fixed_ip_address,
            "instance_id": port.device_id if port and port.device_owner.startswith("compute:")
            else None}


class FloatingIpList(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        found = floating_ips.list_floating_ips(self.ctx, {})
        return Response({"floating_ips": [_nova_floating_ip(f) for f in found]})

    def post(self, request: Request) -> Response:
        """Allocate a floating IP from the pool (an external network) named, or the first."""
        self.authorize("compute:networks:index")
        net_common.authorize(self.ctx, "create_floatingip")
        data = request.data if isinstance(request.data, dict) else {}
        pool = data.get("pool")
        pools = networks.visible_networks(self.ctx).filter(external=True).order_by("name")
        if pool:  # a pool is named by the external network's name or id
            by_id = pools.filter(pk=parse_uuid(pool)).first() if parse_uuid(pool) else None
            network = by_id or pools.filter(name=pool).first()
        else:
            network = pools.first()
        if network is None:
            raise errors.NotFound(f"Floating IP pool not found: {pool}")
        try:
            made = floating_ips.create_floating_ip(self.ctx, {
                "floating_network_id": str(network.id)})
        except errors.Conflict as exc:  # no address left, or the quota
            raise errors.Forbidden(exc.message) from None
        return Response({"floating_ip": _nova_floating_ip(made)})


class FloatingIpItem(_ProxyView):
    def _find(self, floating_ip_id: str) -> FloatingIp:
        try:
            return floating_ips.get_floating_ip(self.ctx, floating_ip_id)
        except errors.NotFound:
            raise errors.NotFound(f"Floating IP not found for ID {floating_ip_id}") from None

    def get(self, request: Request, floating_ip_id: str) -> Response:
        self.authorize("compute:networks:index")
        return Response({"floating_ip": _nova_floating_ip(self._find(floating_ip_id))})

    def delete(self, request: Request, floating_ip_id: str) -> Response:
        self.authorize("compute:networks:index")
        fip = self._find(floating_ip_id)
        floating_ips.delete_floating_ip(self.ctx, str(fip.id))
        return Response(status=202)


def _nova_group(group: SecurityGroup) -> dict:
    """A group in Nova's shape: its ingress rules, a rule from a group naming that group."""
    body = groups.group_body(group)
    remote_ids = {r["remote_group_id"] for r in body["security_group_rules"]
                  if r["remote_group_id"]}
    by_id = {str(g.id): groups.group_body(g)
             for g in SecurityGroup.objects.filter(pk__in=remote_ids - {body["id"]})}
    by_id[body["id"]] = body
    return group_body(body, by_id)


def _nova_errors(call: Callable[[], Any]) -> Any:
    """Neutron's refusals as Nova words them for its proxies: a conflict (a group in use, the
    default group, a rule that exists) is a 400."""
    try:
        return call()
    except errors.Conflict as exc:
        raise errors.BadRequest(exc.message) from None


def _text(body: dict, name: str, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > 255 or (required and not value.strip()):
        raise errors.BadRequest(f"Security group {name} must be a string of 1 to 255 "
                                "characters.")
    return value


class SecurityGroupList(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        found = groups.list_groups(self.ctx, {"project_id": [str(self.ctx.project_id)]})
        return Response({"security_groups": [_nova_group(g) for g in found]})

    def post(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        body = self.body("security_group")
        made = _nova_errors(lambda: groups.create_group(self.ctx, {
            "name": _text(body, "name"), "description": _text(body, "description", False)}))
        return Response({"security_group": _nova_group(made)})


class SecurityGroupItem(_ProxyView):
    def get(self, request: Request, group_id: str) -> Response:
        self.authorize("compute:networks:index")
        return Response({"security_group": _nova_group(groups.get_group(self.ctx, group_id))})

    def put(self, request: Request, group_id: str) -> Response:
        self.authorize("compute:networks:index")
        body = self.body("security_group")
        changes = {k: _text(body, k) for k in ("name", "description") if k in body}
        changed = _nova_errors(lambda: groups.update_group(self.ctx, group_id, changes))
        return Response({"security_group": _nova_group(changed)})

    def delete(self, request: Request, group_id: str) -> Response:
        self.authorize("compute:networks:index")
        group = groups.get_group(self.ctx, group_id)
        if group.name == groups.DEFAULT:
            # Nova refuses the default group to everyone, admins too.
            raise errors.BadRequest("Removing default security group not allowed.")
        _nova_errors(lambda: groups.delete_group(self.ctx, group_id))
        return Response(status=202)


_NOVA_PROTOCOLS = ("tcp", "udp", "icmp")


def _nova_port(value: object, name: str) -> int:
    try:
        port = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise errors.BadRequest(f"Invalid {name}: {value!r} is not an integer.") from None
    if not -1 <= port <= 65535:
        raise errors.BadRequest(f"Invalid {name}: {port} must be between -1 and 65535.")
    return port


def _neutron_rule(body: dict) -> dict:
    """Nova's rule (ip_protocol, from_port, to_port, cidr or group_id) as Neutron's."""
    parent = body.get("parent_group_id")
    if parse_uuid(parent) is None:
        raise errors.BadRequest(f"Invalid parent_group_id {parent!r}: not a security group id.")
    protocol = body.get("ip_protocol")
    if not isinstance(protocol, str) or protocol.lower() not in _NOVA_PROTOCOLS:
        raise errors.BadRequest(f"Invalid IP protocol {protocol!r}: tcp, udp or icmp.")
    protocol = protocol.lower()
    low = _nova_port(body.get("from_port"), "from_port")
    high = _nova_port(body.get("to_port"), "to_port")
    rule: dict = {"security_group_id": str(parse_uuid(parent)), "direction": "ingress",
                  "protocol": protocol}
    if protocol == "icmp":
        # -1 is any type or code
        rule["port_range_min"] = None if low == -1 else low
        rule["port_range_max"] = None if high == -1 or low == -1 else high
    else:
        if not (1 <= low <= 65535 and 1 <= high <= 65535) or low > high:
            raise errors.BadRequest(f"Invalid port range {low}:{high}.")
        rule["port_range_min"], rule["port_range_max"] = low, high
    if body.get("group_id") is not None:
        rule["remote_group_id"] = body["group_id"]
    else:
        cidr = body.get("cidr") or "0.0.0.0/0"
        rule["remote_ip_prefix"] = cidr
        if isinstance(cidr, str) and ":" in cidr:
            rule["ethertype"] = "IPv6"
    return rule


class SecurityGroupRules(_ProxyView):
    def post(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        made = _nova_errors(lambda: groups.create_rule(
            self.ctx, _neutron_rule(self.body("security_group_rule"))))
        body = groups.rule_body(made)
        by_id = {str(g.id): groups.group_body(g) for g in SecurityGroup.objects.filter(
            pk__in=[made.security_group_id, made.remote_group_id] if made.remote_group_id
            else [made.security_group_id])}
        return Response({"security_group_rule": _rule_body(body, by_id)})


class SecurityGroupRule(_ProxyView):
    def delete(self, request: Request, rule_id: str) -> Response:
        self.authorize("compute:networks:index")
        _nova_errors(lambda: groups.delete_rule(self.ctx, rule_id))
        return Response(status=202)


urlpatterns = [
    path("/os-security-groups", SecurityGroupList.as_view()),
    path("/os-security-groups/<str:group_id>", SecurityGroupItem.as_view()),
    path("/os-security-group-rules", SecurityGroupRules.as_view()),
    path("/os-security-group-rules/<str:rule_id>", SecurityGroupRule.as_view()),
    path("/os-networks", NetworkList.as_view()),
    path("/os-networks/<str:network_id>", NetworkItem.as_view()),
    path("/os-tenant-networks", TenantNetworkList.as_view()),
    path("/os-tenant-networks/<str:network_id>", TenantNetworkItem.as_view()),
    path("/os-floating-ip-pools", FloatingIpPools.as_view()),
    path("/os-floating-ips", FloatingIpList.as_view()),
    path("/os-floating-ips/<str:floating_ip_id>", FloatingIpItem.as_view()),
]
