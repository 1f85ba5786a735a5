"""GET /servers/{id}/os-interface[/{port_id}]: the server's ports (Nova's interface attachments),
with a device `tag` from 2.70 (Kumo's ports carry none: null). Attaching and detaching ports is
POST and DELETE on the same paths."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import server_ports
from cloud.network.models import Port

from ..base import ComputeView


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


class ServerInterfaceList(ComputeView):
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


urlpatterns = [
    path("/servers/<str:server_id>/os-interface", ServerInterfaceList.as_view()),
    path("/servers/<str:server_id>/os-interface/<str:port_id>", ServerInterfaceItem.as_view()),
]
