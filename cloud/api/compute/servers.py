"""/servers: create, list, detail, show, delete."""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import servers
from cloud.compute.models import Instance
from cloud.compute.servers import ServerFilters, ServerRequest
from cloud.validation import name_schema

from ..base import ComputeView, Versioned
from . import bodies, params

_NETWORK_ITEM = {
    "type": "object",
    "properties": {
        "uuid": {"type": "string"},
        "port": {"type": ["string", "null"]},
        "fixed_ip": {"type": "string", "format": "ipv4"},
        "tag": {"type": "string"},
    },
    "additionalProperties": False,
}
# No item cap here: the project's metadata_items quota decides (403, as Nova answers).
_METADATA = {
    "type": "object",
    "patternProperties": {
        "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255, "pattern": r"^[^\x00-\x1f]*$"}
    },
    "additionalProperties": False,
}
_BDM = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "uuid": {"type": "string"},
            "boot_index": {"type": ["integer", "string", "null"]},
            "source_type": {"enum": ["image", "blank", "volume", "snapshot"]},
            "destination_type": {"enum": ["local", "volume"]},
            "delete_on_termination": {"type": ["boolean", "string"]},
            "volume_size": {"type": ["integer", "string", "null"]},
        },
    },
}
_COUNT = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1}
_CREATE_SCHEMA = {
    "type": "object",
    "required": ["server"],
    "properties": {
        "server": {
            "type": "object",
            "required": ["name", "flavorRef"],
            "properties": {
                "name": name_schema(),
                "imageRef": {"type": "string"},
                "flavorRef": {"type": ["string", "integer"], "minLength": 1},
                "networks": {
                    "oneOf": [
                        {"type": "array", "items": _NETWORK_ITEM},
                        {"enum": ["auto", "none"]},
                    ]
                },
                "key_name": {"type": ["string", "null"], "maxLength": 255},
                "user_data": {"type": ["string", "null"], "maxLength": 65535},
                "availability_zone": {"type": ["string", "null"], "maxLength": 255},
                "metadata": _METADATA,
                "min_count": _COUNT,
                "max_count": _COUNT,
                "return_reservation_id": {"type": ["boolean", "string"]},
                "block_device_mapping_v2": _BDM,
                "security_groups": {"type": "array"},
                "config_drive": {"type": ["boolean", "string"]},
                "description": {"type": ["string", "null"], "maxLength": 255},
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "adminPass": {"type": "string"},
                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
            },
            "additionalProperties": False,
        },
        "os:scheduler_hints": {"type": "object"},
        "OS-SCH-HNT:scheduler_hints": {"type": "object"},
    },
    "additionalProperties": False,
}


_ACCESS_IP = {
    "ipv4": {"anyOf": [{"type": "string", "format": "ipv4"}, {"enum": ["", None]}]},
    "ipv6": {"anyOf": [{"type": "string", "format": "ipv6"}, {"enum": ["", None]}]},
}
_UPDATE_SCHEMA = {
    "type": "object",
    "required": ["server"],
    "properties": {
        "server": {
            "type": "object",
            "properties": {
                "name": name_schema(),
                "accessIPv4": _ACCESS_IP["ipv4"],
                "accessIPv6": _ACCESS_IP["ipv6"],
                "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
_UPDATE_SCHEMA_219: dict[str, Any] = copy.deepcopy(_UPDATE_SCHEMA)
_UPDATE_SCHEMA_219["properties"]["server"]["properties"]["description"] = {
    "type": ["string", "null"],
    "maxLength": 255,
    "pattern": r"^[^\x00-\x1f\x7f]*$",
}
# What the update answer keeps of the show body; version-gated keys (locked, description, tags)
# are present only when server_detail put them there.
class ServerList(ComputeView):
    detail = False
    body_schemas = {"POST": _CREATE_SCHEMA}
    query_params = {"GET": ("name", "status", "image", "flavor", "host", "changes-since",
                            "project_id", "tenant_id", "all_tenants", "deleted", "limit", "marker")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:servers:index")
        query = request.query_params
        all_tenants = params.bool_param(query, "all_tenants")
        if all_tenants:
            self.authorize("compute:servers:all_tenants")
        limit = params.limit_param(query)
        filters = ServerFilters(
            name=query.get("name"),
            status=query.get("status"),
            image=query.get("image"),
            flavor=query.get("flavor"),
            host=query.get("host"),
            changes_since=params.datetime_param(query, "changes-since"),
            project_id=query.get("project_id") or query.get("tenant_id"),
            all_tenants=all_tenants,
            deleted=self.ctx.is_admin and params.bool_param(query, "deleted"),
            limit=limit,
            marker=query.get("marker"),
        )
        instances = servers.list_servers(self.ctx, filters)
        if self.detail:
            page = bodies.ServerContext(instances, self.ctx.is_admin)
            shown = [
                bodies.server_detail(i, self.version, self.compute_url, page, self.ctx.is_admin)
                for i in instances
            ]
        else:
            shown = [bodies.server_summary(i, self.compute_url) for i in instances]
        body = {"servers": shown}
        path = "servers/detail" if self.detail else "servers"
        links = params.next_link(self.compute_url(path), instances, limit, lambda i: i.uuid)
        if links:
            body["servers_links"] = links
        return Response(body)

    def post(self, request: Request) -> Response:
        self.authorize("compute:servers:create")
        body = self.valid_body()
        server = body["server"]
        image_ref = server.get("imageRef") or ""
        if not image_ref:
            for bdm in server.get("block_device_mapping_v2", []):
                if bdm.get("source_type") == "image" and bdm.get("destination_type") == "local":
                    image_ref = bdm.get("uuid", "")
        if not image_ref:
            raise errors.BadRequest("Missing imageRef attribute")
        networks = server.get("networks")
        if networks is None:
            if self.version.at_least("2.37"):
                raise errors.BadRequest("Invalid input for field/attribute networks: required")
            networks = "auto"
        elif isinstance(networks, str) and not self.version.at_least("2.37"):
            raise errors.BadRequest("networks 'auto'/'none' needs microversion 2.37 or later")
        user_data = server.get("user_data")
        if user_data:
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError):
                raise errors.BadRequest("User data needs to be valid base 64.") from None
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        request_spec = ServerRequest(
            name=server["name"],
            image_id=image_ref,
            flavor_ref=str(server["flavorRef"]),
            networks=networks,
            key_name=server.get("key_name"),
            user_data=user_data,
            availability_zone=server.get("availability_zone"),
            metadata=server.get("metadata", {}),
            min_count=int(server.get("min_count", 1)),
            max_count=int(server.get("max_count", server.get("min_count", 1))),
            description=server.get("description"),
            access_ip_v4=server.get("accessIPv4", ""),
            access_ip_v6=_normalise_v6(server.get("accessIPv6", "")),
            config_drive=str(server.get("config_drive", "")).lower() in ("true", "1", "yes"),
            scheduler_hints=hints,
        )
        if request_spec.max_count < request_spec.min_count:
            raise errors.BadRequest("min_count must be <= max_count")
        instances = servers.create_servers(self.ctx, request_spec)
        first = instances[0]
        uuid = str(first.uuid)
        reply = {
            "id": uuid,
            "links": bodies.links(self.compute_url, "servers", uuid),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
        }
        response = Response({"server": reply}, status=202)
        response["Location"] = self.compute_url("servers", uuid)
        return response


def _normalise_v6(value: str) -> str:
    import ipaddress

    return ipaddress.ip_address(value).compressed if value else ""


class ServerDetailList(ServerList):
    detail = True
    http_method_names = ["get", "head", "options"]  # servers are created at /servers


class ServerItem(ComputeView):
    body_schemas = {"PUT": Versioned(("2.1", _UPDATE_SCHEMA), ("2.19", _UPDATE_SCHEMA_219))}

    def get(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:servers:show")
        page = bodies.ServerContext([instance], self.ctx.is_admin)
        body = bodies.server_detail(instance, self.version, self.compute_url, page, self.ctx.is_admin)
        return Response({"server": body})

    def put(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:servers:update")
        server = self.valid_body("server")
        fields: dict[str, str | None] = {}
        if "name" in server:
            fields["name"] = server["name"]
        if "accessIPv4" in server:
            fields["access_ip_v4"] = server["accessIPv4"] or ""
        if "accessIPv6" in server:
            fields["access_ip_v6"] = _normalise_v6(server["accessIPv6"] or "")
        if "description" in server:
            fields["description"] = server["description"]
        instance = servers.update_server(self.ctx, instance, **fields)
        return Response({"server": self._update_body(instance)})

    def _update_body(self, instance: Instance) -> dict:
        return bodies.server_reduced(instance, self.version, self.compute_url, self.ctx.is_admin)

    def delete(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:servers:delete")
        servers.delete_server(self.ctx, instance)
        return Response(status=204)
