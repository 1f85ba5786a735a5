"""/servers/{id}/os-interface[/{port_id}]: the server's ports (Nova's interface attachments), with
a device `tag` from 2.70 (Kumo's ports carry none: null). POST attaches a port (an unbound one of
the caller's, or a new one on a network) and DELETE detaches one, each through the operations
"attach_interface" and "detach_interface" (cloud/compute/server_interfaces.py)."""

from __future__ import annotations

import copy

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import operations, server_ports
from cloud.network.models import Port

from ..base import ComputeView, Versioned
from .server_schemas import DEVICE_TAG


def interface_body(port: Port, tagged: bool) -> dict:
    body = {
        "net_id": str(port.network_id),
        "port_id": str(port.id),
        "mac_addr": port.mac_address,
        "port_state": port.status,
        "fixed_ips": [{"subnet_id": f.get("subnet_id"), "ip_address": f.get("ip_address")}
                      for f in port.fixed_ips or []],
    }
    if tagged:
        body["tag"] = None
    return body


_ATTACH: dict = {
    "type": "object",
    "properties": {
        "interfaceAttachment": {
            "type": "object",
            "properties": {
                "net_id": {"type": "string", "format": "uuid"},
                "port_id": {"type": "string", "format": "uuid"},
                "fixed_ips": {
                    "type": "array", "minItems": 1, "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["ip_address"],
                        "properties": {"ip_address": {"type": "string", "format": "ipv4"}},
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


# From 2.49 an attachment may carry a device tag; the hosts expose no device metadata, so a tagged
# attachment is refused with Nova's error for a host that cannot tag (400).
_ATTACH_249 = copy.deepcopy(_ATTACH)
_ATTACH_249["properties"]["interfaceAttachment"]["properties"]["tag"] = DEVICE_TAG
TAG_UNSUPPORTED = "Tagged network interface attachment is not supported for this server instance."


class ServerInterfaceList(ComputeView):
    body_schemas = {"POST": Versioned(("2.1", _ATTACH), ("2.49", _ATTACH_249))}

    def post(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_interfaces:create")
        wanted = self.valid_body().get("interfaceAttachment") or {}
        if wanted.get("tag"):
            raise errors.BadRequest(TAG_UNSUPPORTED)
        fixed_ips = wanted.get("fixed_ips") or []
        if fixed_ips and not wanted.get("net_id"):
            raise errors.BadRequest("fixed_ips need a net_id.")
        port = operations.perform(
            self.ctx, instance, "attach_interface", net_id=wanted.get("net_id"),
            port_id=wanted.get("port_id"),
            fixed_ip=fixed_ips[0]["ip_address"] if fixed_ips else None)
        return Response({"interfaceAttachment": interface_body(
            port, self.version.at_least("2.70"))})

    def get(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_interfaces:list")
        tagged = self.version.at_least("2.70")
        return Response({"interfaceAttachments": [
            interface_body(p, tagged) for p in server_ports.ports_of(instance)]})


class ServerInterfaceItem(ComputeView):
    def get(self, request: Request, server_id: str, port_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_interfaces:show")
        port = server_ports.port_of(instance, port_id)
        return Response({"interfaceAttachment": interface_body(
            port, self.version.at_least("2.70"))})

    def delete(self, request: Request, server_id: str, port_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_interfaces:delete")
        operations.perform(self.ctx, instance, "detach_interface", port_id=port_id)
        return Response(status=202)


urlpatterns = [
    path("/servers/<str:server_id>/os-interface", ServerInterfaceList.as_view()),
    path("/servers/<str:server_id>/os-interface/<str:port_id>", ServerInterfaceItem.as_view()),
]
