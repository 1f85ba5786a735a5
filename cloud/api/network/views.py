"""Neutron v2.0 read-only subset over HTTP."""

from __future__ import annotations

from datetime import datetime

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.api import error_bodies
from cloud.api.base import NetworkView, PublicView
from cloud.network import ipam, networks
from cloud.network.models import Network, Port, Subnet

# Extensions whose attributes these bodies really carry; clients probe for some by alias.
EXTENSIONS = [
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    ("network-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("security-group", "security-group", "The security groups extension."),
]
RESOURCES = ["network", "subnet", "port", "security-group", "floatingip", "quota", "extension"]


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner(project_id: str | None) -> dict:
    return {"tenant_id": project_id or "", "project_id": project_id or ""}


def network_body(network: Network) -> dict:
    return {
        "id": str(network.id),
        "name": network.name,
        "status": "ACTIVE",
        "admin_state_up": network.admin_state_up,
        "shared": network.shared,
        "subnets": [str(subnet.id) for subnet in network.subnets.all()],
        **_owner(network.project_id),
        "router:external": network.external,
        "mtu": network.mtu,
        "port_security_enabled": True,
        "availability_zones": [],
        "availability_zone_hints": [],
        "description": network.description,
        "tags": [],
        "created_at": _iso(network.created_at),
        "updated_at": _iso(network.updated_at),
    }


def subnet_body(subnet: Subnet) -> dict:
    return {
        "id": str(subnet.id),
        "name": subnet.name,
        "network_id": str(subnet.network_id),
        **_owner(subnet.project_id or subnet.network.project_id),
        "cidr": subnet.cidr,
        "ip_version": subnet.ip_version,
        "gateway_ip": subnet.gateway_ip,
        "enable_dhcp": subnet.enable_dhcp,
        "allocation_pools": ipam.allocation_pools(subnet),
        "dns_nameservers": [],
        "host_routes": [],
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "description": "",
        "tags": [],
        "created_at": _iso(subnet.created_at),
        "updated_at": _iso(subnet.updated_at),
    }


def port_body(port: Port) -> dict:
    return {
        "id": str(port.id),
        "name": port.name,
        "network_id": str(port.network_id),
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "mac_address": port.mac_address,
        "fixed_ips": list(port.fixed_ips),
        "status": port.status,
        "admin_state_up": port.admin_state_up,
        **_owner(port.project_id),
        "security_groups": [],
        "port_security_enabled": True,
        "allowed_address_pairs": [],
        "binding:vnic_type": "normal",
        "description": "",
        "tags": [],
        "created_at": _iso(port.created_at),
        "updated_at": _iso(port.updated_at),
    }


class _AnyAccept:
    """Neutron answers JSON whatever Accept says; DRF would refuse an unexpected one with 406."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        # A mixin: the DRF view after it in the MRO has the method.
        return super().perform_content_negotiation(request, force=True)  # type: ignore[misc]


class NeutronView(_AnyAccept, NetworkView):
    def filters(self) -> dict[str, list[str]]:
        return {key: values for key, values in self.request.query_params.lists() if key != "fields"}

    def pick(self, body: dict) -> dict:
        """Neutron's `fields=` parameter: return only the attributes asked for."""
        fields = self.request.query_params.getlist("fields")
        if not fields:
            return body
        return {key: value for key, value in body.items() if key in fields}


class NetworkRoot(_AnyAccept, PublicView):
    family = error_bodies.NETWORK

    def get(self, request: Request) -> Response:
        href = f"{self.base_url()}/network/v2.0/"
        return Response(
            {
                "versions": [
                    {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}
                ]
            }
        )


class NetworkV2Root(_AnyAccept, PublicView):
    """The resource index: public, like the version list, since it names nothing private."""

    family = error_bodies.NETWORK

    def get(self, request: Request) -> Response:
        base = f"{self.base_url()}/network/v2.0"
        return Response(
            {
                "resources": [
                    {
                        "name": name,
                        "collection": f"{name}s",
                        "links": [{"rel": "self", "href": f"{base}/{name}s"}],
                    }
                    for name in RESOURCES
                ]
            }
        )


class Networks(NeutronView):
    query_params = {"GET": ("fields", "id", "name", "shared", "router:external", "admin_state_up",
                            "project_id", "tenant_id", "description", "status")}

    def get(self, request: Request) -> Response:
        found = networks.list_networks(self.ctx, self.filters())
        return Response({"networks": [self.pick(network_body(n)) for n in found]})


class NetworkDetail(NeutronView):
    query_params = {"GET": ("fields",)}

    def get(self, request: Request, network_id: str) -> Response:
        return Response(
            {"network": self.pick(network_body(networks.get_network(self.ctx, network_id)))}
        )


class Subnets(NeutronView):
    query_params = {"GET": ("fields", "id", "name", "network_id", "cidr", "ip_version", "gateway_ip",
                            "enable_dhcp", "project_id", "tenant_id")}

    def get(self, request: Request) -> Response:
        subnets = networks.list_subnets(self.ctx, self.filters())
        return Response({"subnets": [self.pick(subnet_body(s)) for s in subnets]})


class SubnetDetail(NeutronView):
    query_params = {"GET": ("fields",)}

    def get(self, request: Request, subnet_id: str) -> Response:
        return Response(
            {"subnet": self.pick(subnet_body(networks.get_subnet(self.ctx, subnet_id)))}
        )


class Ports(NeutronView):
    query_params = {"GET": ("fields", "id", "name", "network_id", "device_id", "device_owner",
                            "mac_address", "status", "admin_state_up", "project_id", "tenant_id")}

    def get(self, request: Request) -> Response:
        ports = networks.list_ports(self.ctx, self.filters())
        return Response({"ports": [self.pick(port_body(p)) for p in ports]})


class PortDetail(NeutronView):
    query_params = {"GET": ("fields",)}

    def get(self, request: Request, port_id: str) -> Response:
        return Response({"port": self.pick(port_body(networks.get_port(self.ctx, port_id)))})


class QuotaDefault(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota": networks.get_quota(self.ctx, project_id)})


class Quota(QuotaDefault):
    def delete(self, request: Request, project_id: str) -> Response:
        networks.reset_quota(self.ctx, project_id)
        return Response(status=204)


class QuotaDetails(NeutronView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"quota": networks.get_quota_details(self.ctx, project_id)})


class FloatingIps(NeutronView):
    def get(self, request: Request) -> Response:
        return Response({"floatingips": networks.list_floating_ips(self.ctx)})


class FloatingIpDetail(NeutronView):
    def get(self, request: Request, floatingip_id: str) -> Response:
        raise errors.NotFound(
            f"Floating IP {floatingip_id} could not be found.", neutron_type="FloatingIPNotFound"
        )


class SecurityGroups(NeutronView):
    query_params = {"GET": ("fields", "id", "name", "project_id", "tenant_id")}

    def get(self, request: Request) -> Response:
        groups = networks.list_security_groups(self.ctx, self.filters())
        return Response({"security_groups": [self.pick(g) for g in groups]})


class SecurityGroupDetail(NeutronView):
    def get(self, request: Request, group_id: str) -> Response:
        return Response(
            {"security_group": self.pick(networks.get_security_group(self.ctx, group_id))}
        )

    def delete(self, request: Request, group_id: str) -> Response:
        networks.delete_security_group(self.ctx, group_id)
        return Response(status=204)


def _extension(alias: str, name: str, description: str) -> dict:
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2013-01-01T00:00:00-00:00",
        "links": [],
    }


class Extensions(NeutronView):
    def get(self, request: Request) -> Response:
        return Response({"extensions": [_extension(*ext) for ext in EXTENSIONS]})


class ExtensionDetail(NeutronView):
    def get(self, request: Request, alias: str) -> Response:
        for ext in EXTENSIONS:
            if ext[0] == alias:
                return Response({"extension": _extension(*ext)})
        raise errors.NotFound(
            f"Extension with alias {alias} does not exist", neutron_type="ExtensionNotFound"
        )
