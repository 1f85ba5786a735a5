"""The networking APIs Nova proxied to the network service until 2.35 (404 from 2.36): the networks
a project may use (os-networks, os-tenant-networks) read from Kumo's network API; floating IPs and
their pools (os-floating-ips, os-floating-ip-pools), of which this cloud has none; the project's
security groups (os-security-groups: its "default" group, the only one Kumo's read-only network
API has, so creating, deleting and changing rules is refused with 400)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.network import networks
from cloud.network.models import Network

from ..base import ComputeView
from .security_groups import group_body

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


class FloatingIpList(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        return Response({"floating_ips": []})


class FloatingIpItem(_ProxyView):
    def get(self, request: Request, floating_ip_id: str) -> Response:
        self.authorize("compute:networks:index")
        raise errors.NotFound(f"Floating IP not found for ID {floating_ip_id}")


class SecurityGroupList(_ProxyView):
    def get(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        group = networks.default_security_group(str(self.ctx.project_id))
        return Response({"security_groups": [group_body(group, {group["id"]: group})]})

    def post(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        raise _READ_ONLY


class SecurityGroupItem(_ProxyView):
    def get(self, request: Request, group_id: str) -> Response:
        self.authorize("compute:networks:index")
        group = networks.default_security_group(str(self.ctx.project_id))
        if group_id != group["id"]:
            raise errors.NotFound(f"Security group {group_id} not found.")
        return Response({"security_group": group_body(group, {group["id"]: group})})

    def put(self, request: Request, group_id: str) -> Response:
        self.authorize("compute:networks:index")
        raise _READ_ONLY

    delete = put


class SecurityGroupRules(_ProxyView):
    def post(self, request: Request) -> Response:
        self.authorize("compute:networks:index")
        raise _READ_ONLY


class SecurityGroupRule(_ProxyView):
    def delete(self, request: Request, rule_id: str) -> Response:
        self.authorize("compute:networks:index")
        raise _READ_ONLY


_READ_ONLY = errors.BadRequest("Security groups are read-only in this cloud: every project has "
                               "its default group only.")

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
