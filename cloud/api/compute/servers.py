"""/servers: create, list, detail, show, update, delete."""

from __future__ import annotations

import base64
import binascii
import gc
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import boot_volumes, destinations, server_rows, server_tags, servers
from cloud.compute.destinations import Destination
from cloud.compute.servers import ServerRequest

from ..base import ComputeView
from . import bodies, params, server_queries, server_schemas, server_show

_TRUE = ("true", "1", "yes", "on")


def normalise_v6(value: str) -> str:
    return ipaddress.ip_address(value).compressed if value else ""


def _user_data(value: str | None) -> str | None:
    if value:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise errors.BadRequest("User data needs to be valid base 64.") from None
    return value


def _refuse_device_tags(server: dict) -> None:
    """Nova fails a build whose devices carry tags on a host that cannot expose them (the guest
    reads them from the metadata API or the config drive); Kumo's hosts do not, so such a request
    is refused before anything is made."""
    networks = server.get("networks")
    tagged = [n for n in networks if n.get("tag")] if isinstance(networks, list) else []
    tagged += [b for b in server.get("block_device_mapping_v2", []) if b.get("tag")]
    if tagged:
        raise errors.BadRequest("Device tagging is not supported by the compute hosts: remove "
                                "the tag from networks and block_device_mapping_v2.")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector held off while a page's bodies are built. A page of 1,000 servers
    makes some 40,000 dicts and lists: a dozen young collections during the list, and now and
    then a full one over the whole process heap (70 ms measured in a web process) that a list
    sets off, all for objects that form no cycles (reference counting frees them once the answer
    is sent). Concurrent lists may turn it back on early; none leaves it off."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class ServerList(ComputeView):
    detail = False
    body_schemas = {"POST": server_schemas.CREATE}
    query_params = {"GET": server_queries.QUERY_PARAMS}

    def get(self, request: Request) -> Response:
        self.authorize("compute:servers:index")
        filters = server_queries.read_filters(request.query_params, self.ctx, self.version)
        if self.detail:
            with _collector_paused():
                rows = server_rows.list_server_rows(
                    self.ctx, filters, with_user_data=bodies.shows_user_data(self.version,
                                                                             self.ctx.is_admin))
                page = bodies.ServerContext(rows, self.ctx.is_admin, self.version)
                shown = [
                    bodies.server_detail(r, self.version, self.compute_url, page,
                                         self.ctx.is_admin, view=bodies.DETAIL)
                    for r in rows
                ]
        else:
            names = server_rows.list_server_names(self.ctx, filters)
            shown = [bodies.server_summary(uuid, name, self.compute_url) for uuid, name in names]
        body: dict[str, Any] = {"servers": shown}
        path = "servers/detail" if self.detail else "servers"
        links = params.next_link(self.compute_url(path), shown, filters.limit,
                                 lambda server: server["id"])
        if links:
            body["servers_links"] = links
        return Response(body)

    def post(self, request: Request) -> Response:
        self.authorize("compute:servers:create")
        body = self.valid_body()
        server = body["server"]
        networks = server.get("networks")
        if networks is None:
            networks = "auto"
        _refuse_device_tags(server)
        personality = server.get("personality")
        if personality:
            raise errors.BadRequest("Personality files are not supported: pass files with "
                                    "user_data (cloud-init) instead.")
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        min_count = int(server.get("min_count", 1))
        image_id, block_devices = boot_volumes.parse(server)
        request_spec = ServerRequest(
            name=server["name"],
            image_id=image_id,
            block_devices=block_devices,
            flavor_ref=str(server["flavorRef"]),
            networks=networks,
            key_name=server.get("key_name"),
            user_data=_user_data(server.get("user_data")),
            metadata=server.get("metadata", {}),
            min_count=min_count,
            max_count=int(server.get("max_count", min_count)),
            description=server.get("description") if self.version.at_least("2.19") else None,
            access_ip_v4=server.get("accessIPv4", ""),
            access_ip_v6=normalise_v6(server.get("accessIPv6", "")),
            config_drive=str(server.get("config_drive", "")).lower() in _TRUE,
            scheduler_hints=hints,
            tags=server_tags.validate_tags(server.get("tags") or []),
            hostname=server.get("hostname"),
            security_groups=[g["name"] for g in server.get("security_groups", []) if g.get("name")]
            or None,
            trusted_image_certificates=server.get("trusted_image_certificates"),
        )
        if request_spec.max_count < request_spec.min_count:
            raise errors.BadRequest("min_count must be <= max_count")
        request_spec.availability_zone, request_spec.destination = self._destination(server)
        instances = servers.create_servers(self.ctx, request_spec)
        if str(server.get("return_reservation_id", "")).lower() in _TRUE:
            return Response({"reservation_id": instances[0].reservation_id}, status=202)
        uuid = str(instances[0].uuid)
        reply = {
            "id": uuid,
            "links": bodies.links(self.compute_url, "servers", uuid),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": name} for name in instances[0].security_groups],
        }
        response = Response({"server": reply}, status=202)
        response["Location"] = self.compute_url("servers", uuid)
        return response

    def _destination(self, server: dict) -> tuple[str | None, Destination]:
        """The zone asked for, and the host or node an admin asked for: "zone:host:node" forces
        it (admin only), 2.74's host/hypervisor_hostname narrow the scheduler (admin only)."""
        zone, host, node = destinations.split_zone(server.get("availability_zone"))
        if host or node:
            self.authorize("compute:servers:create:forced_host")
            if node and not host:
                host = destinations.node_host(node)
                if host is None:
                    raise errors.BadRequest(f"Compute host {node} could not be found.")
            return zone, Destination(host=host, node=node, forced=True)
        requested_host = server.get("host")
        requested_node = server.get("hypervisor_hostname")
        if requested_host or requested_node:
            self.authorize("compute:servers:create:requested_destination")
            return zone, Destination(host=requested_host, node=requested_node)
        return zone, Destination()


class ServerDetailList(ServerList):
    detail = True
    http_method_names = ["get", "head", "options"]  # servers are created at /servers


class ServerItem(ComputeView):
    body_schemas = {"PUT": server_schemas.UPDATE}

    def get(self, request: Request, server_id: str) -> Response:
        if server_show.available():
            # One statement (server_show.py); looked up before the rule is checked, as
            # authorized_server does.
            found = server_show.read(self.ctx, server_id)
            if found is None:
                raise errors.NotFound(f"Instance {server_id} could not be found.")
            self.authorize("compute:servers:show")
            row, page = found
            body = bodies.server_detail(row, self.version, self.compute_url, page,
                                        self.ctx.is_admin, view=bodies.SHOW)
            return Response({"server": body})
        instance = self.authorized_server(server_id, "compute:servers:show")
        body = bodies.server_show(instance, self.version, self.compute_url, self.ctx.is_admin)
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
            fields["access_ip_v6"] = normalise_v6(server["accessIPv6"] or "")
        if "description" in server:
            fields["description"] = server["description"]
        if "hostname" in server:
            fields["hostname"] = server["hostname"]
        if "pinned_availability_zone" in server:
            servers.set_pinned_zone(self.ctx, instance, server["pinned_availability_zone"])
            instance.refresh_from_db()
        instance = servers.update_server(self.ctx, instance, **fields)
        body = bodies.server_show(instance, self.version, self.compute_url, self.ctx.is_admin,
                                  view=bodies.UPDATE)
        return Response({"server": body})

    def delete(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:servers:delete")
        servers.delete_server(self.ctx, instance)
        return Response(status=204)
