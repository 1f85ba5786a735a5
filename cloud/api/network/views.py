"""Neutron v2.0 over HTTP: discovery, networks, subnets, ports, extensions. Security groups, routers,
floating IPs, quotas and agents: the sibling modules. Views are thin over cloud/network/."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.api import error_bodies
from cloud.api.base import NetworkView, PublicView
from cloud.network import common, networks, ports, subnets

from .bodies import network_body, port_body, subnet_body

# Extensions whose attributes and resources these APIs really have; clients probe by alias.
EXTENSIONS = [
    ("agent", "agent", "The agent management extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port"),
    ("external-net", "Neutron external network", "Adds external network attribute to network"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Whether SNAT is done"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("network-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "A writable MTU attribute for a network"),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "The project_id field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Quota usage per project"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding and NAT"),
    ("security-group", "security-group", "The security groups extension."),
    ("stateful-security-group", "Stateful security group", "Whether a group is stateful"),
    ("standard-attr-description", "standard-attr-description", "Descriptions of resources"),
    ("standard-attr-revisions", "Resource revision numbers", "Revision numbers of resources"),
    ("standard-attr-timestamp", "Resource timestamps", "created_at and updated_at fields"),
    ("subnet-external-network", "Subnet External Network", "router:external on subnets"),
    ("ip-substring-filtering", "IP address substring filtering", "Port IP substring filters"),
]
RESOURCES = ["network", "subnet", "port", "security-group", "security-group-rule", "router",
             "floatingip", "quota", "agent", "extension"]


class _AnyAccept:
    """Neutron answers JSON whatever Accept says; DRF would refuse an unexpected one with 406."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        # A mixin: the DRF view after it in the MRO has the method.
        return super().perform_content_negotiation(request, force=True)  # type: ignore[misc]


class NeutronView(_AnyAccept, NetworkView):
    def filters(self) -> dict[str, list[str]]:
        return {key: values for key, values in self.request.query_params.lists()
                if key not in ("fields", "limit", "marker", "page_reverse", "sort_key",
                               "sort_dir")}

    def pick(self, body: dict) -> dict:
        """Neutron's `fields=` parameter: return only the attributes asked for."""
        fields = self.request.query_params.getlist("fields")
        if not fields:
            return body
        return {key: value for key, value in body.items() if key in fields}

    def resource(self, key: str) -> object:
        """The body's `key` member (any JSON: the service functions check it)."""
        data = self.body()
        if key not in data:
            raise errors.BadRequest(f"Resource body required: '{key}'")
        return data[key]


class Collection(NeutronView):
    """GET lists, POST creates one (a bulk create of a list answers 400)."""

    key = ""
    lister: Callable
    creator: Callable
    shape: Callable

    def get(self, request: Request, **_: str) -> Response:
        found = type(self).lister(self.ctx, self.filters())
        return Response({f"{self.key}s": [self.pick(type(self).shape(r)) for r in found]})

    def post(self, request: Request, **_: str) -> Response:
        plural = f"{self.key}s"
        if plural in self.body() and self.key not in self.body():
            made = common.bulk(type(self).creator, self.ctx, self.body()[plural])
            return Response({plural: [type(self).shape(m) for m in made]}, status=201)
        one = type(self).creator(self.ctx, self.resource(self.key))
        return Response({self.key: type(self).shape(one)}, status=201)


class FixedMember(NeutronView):
    """GET shows, DELETE removes one, named by the last path argument."""

    key = ""
    getter: Callable
    deleter: Callable
    shape: Callable
    query_params = {"GET": ("fields",)}

    def get(self, request: Request, **kw: str) -> Response:
        (ident,) = kw.values()
        return Response({self.key: self.pick(type(self).shape(type(self).getter(self.ctx, ident)))})

    def delete(self, request: Request, **kw: str) -> Response:
        (ident,) = kw.values()
        type(self).deleter(self.ctx, ident)
        return Response(status=204)


class Member(FixedMember):
    """…and PUT changes it."""

    updater: Callable

    def put(self, request: Request, **kw: str) -> Response:
        (ident,) = kw.values()
        changed = type(self).updater(self.ctx, ident, self.resource(self.key))
        return Response({self.key: type(self).shape(changed)})


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


class Networks(Collection):
    key = "network"
    lister, creator, shape = networks.list_networks, networks.create_network, network_body
    query_params = {"GET": ("fields", "id", "name", "shared", "router:external", "admin_state_up",
                            "project_id", "tenant_id", "description", "status", "mtu",
                            "port_security_enabled", "provider:network_type",
                            "provider:physical_network", "provider:segmentation_id")}


class NetworkDetail(Member):
    key = "network"
    getter, updater, deleter = (networks.get_network, networks.update_network,
                                networks.delete_network)
    shape = network_body


class Subnets(Collection):
    key = "subnet"
    lister, creator, shape = subnets.list_subnets, subnets.create_subnet, subnet_body
    query_params = {"GET": ("fields", "id", "name", "network_id", "cidr", "ip_version", "gateway_ip",
                            "enable_dhcp", "project_id", "tenant_id", "description")}


class SubnetDetail(Member):
    key = "subnet"
    getter, updater, deleter = subnets.get_subnet, subnets.update_subnet, subnets.delete_subnet
    shape = subnet_body


class Ports(Collection):
    key = "port"
    lister, creator, shape = ports.list_ports, ports.create_port, port_body
    query_params = {"GET": ("fields", "id", "name", "network_id", "device_id", "device_owner",
                            "mac_address", "status", "admin_state_up", "project_id", "tenant_id",
                            "fixed_ips", "security_groups", "description",
                            "port_security_enabled", "binding:host_id")}


class PortDetail(Member):
    key = "port"
    getter, updater, deleter = ports.get_port, ports.update_port, ports.delete_port
    shape = port_body


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
