"""The server actions that proxied nova-network and Neutron (addFixedIp, removeFixedIp,
addFloatingIp, removeFloatingIp): gone from 2.44 (404, as Nova). Below it they are answered as
Nova answers them here: this cloud has no floating IPs, so any floating address is not found
(404); a fixed IP is added or removed with os-interface instead (400 saying so)."""

from __future__ import annotations

from typing import Any, NoReturn

from cloud import errors
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


def act(view: ComputeView, server_id: str, key: str, args: Any) -> NoReturn:
    if view.version.at_least("2.44"):
        raise errors.NotFound("The resource could not be found.")
    view.authorized_server(server_id, RULES[key])
    validate(SCHEMAS[key], args)
    if key in ("addFloatingIp", "removeFloatingIp"):
        raise errors.NotFound(f"floating IP not found for address {args['address']}")
    raise errors.BadRequest("Fixed IPs are added and removed with os-interface (attach or "
                            "detach a port) in this cloud.")
