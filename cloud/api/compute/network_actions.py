"""The server actions that proxied nova-network and Neutron (addFixedIp, removeFixedIp,
addFloatingIp, removeFloatingIp): gone from 2.44 (404, as Nova). Below it a floating IP of the
project is mapped onto the server's port, or taken off it, through the Network API's floating IPs
(an unknown address 404, an unreachable one 400); a fixed IP is added or removed with os-interface
instead (400 saying so)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response

from cloud import errors
from cloud.network import floating_ips
from cloud.validation import validate

from ..base import ComputeView

RULES = {
    "addFixedIp": "compute:servers:network_actions",
    "removeFixedIp": "compute:servers:network_actions",
    "addFloatingIp": "compute:servers:network_actions",
    "removeFloatingIp": "compute:servers:network_actions",
}
_ADDRESS = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
SCHEMAS: dict[str, dict] = {
    "addFixedIp": {"type": "object", "required": ["networkId"],
                   "properties": {"networkId": {"type": ["string", "integer"]}},
                   "additionalProperties": False},
    "removeFixedIp": {"type": "object", "required": ["address"],
                      "properties": {"address": _ADDRESS}, "additionalProperties": False},
    "addFloatingIp": {"type": "object", "required": ["address"],
                      "properties": {"address": _ADDRESS, "fixed_address": _ADDRESS},
                      "additionalProperties": False},
    "removeFloatingIp": {"type": "object", "required": ["address"],
                         "properties": {"address": _ADDRESS}, "additionalProperties": False},
}


def act(view: ComputeView, server_id: str, key: str, args: Any) -> Response:
    if view.version.at_least("2.44"):
        raise errors.NotFound("The resource could not be found.")
    instance = view.authorized_server(server_id, RULES[key])
    validate(SCHEMAS[key], args)
    device = str(instance.uuid)
    if key == "addFloatingIp":
        floating_ips.associate_device(view.ctx, args["address"], device,
                                      args.get("fixed_address"))
        return Response(status=202)
    if key == "removeFloatingIp":
        floating_ips.disassociate_device(view.ctx, args["address"], device)
        return Response(status=202)
    raise errors.BadRequest("Fixed IPs are added and removed with os-interface (attach or "
                            "detach a port) in this cloud.")
