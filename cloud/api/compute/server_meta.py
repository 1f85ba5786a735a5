"""/servers/{id}/metadata[/{key}] and /servers/{id}/ips[/{network}]."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import server_metadata
from cloud.compute.models import Instance

from ..base import ComputeView
from . import bodies

# The same key and value rules as metadata given at create (servers.py), as Nova has them.
_ITEMS = {
    "type": "object",
    "patternProperties": {
        "^[a-zA-Z0-9-_:. ]{1,255}$": {
            "type": "string",
            "maxLength": 255,
            "pattern": r"^[^\x00-\x1f\x7f]*$",
        }
    },
    "additionalProperties": False,
}
_METADATA_BODY = {
    "type": "object",
    "required": ["metadata"],
    "properties": {"metadata": _ITEMS},
    "additionalProperties": False,
}
_META_BODY = {
    "type": "object",
    "required": ["meta"],
    "properties": {"meta": _ITEMS},
    "additionalProperties": False,
}


class ServerMetadata(ComputeView):
    body_schemas = {"POST": _METADATA_BODY, "PUT": _METADATA_BODY}

    def get(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_metadata:index")
        return Response({"metadata": instance.metadata})

    def post(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_metadata:create")
        return self._write(instance, replace=False)

    def put(self, request: Request, server_id: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_metadata:update_all")
        return self._write(instance, replace=True)

    def _write(self, instance: Instance, *, replace: bool) -> Response:
        metadata = server_metadata.update_metadata(
            self.ctx, instance, self.valid_body("metadata"), replace=replace
        )
        return Response({"metadata": metadata})


class ServerMetadataItem(ComputeView):
    body_schemas = {"PUT": _META_BODY}

    def get(self, request: Request, server_id: str, key: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_metadata:show")
        return Response({"meta": {key: server_metadata.get_item(instance, key)}})

    def put(self, request: Request, server_id: str, key: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_metadata:update")
        meta = self.valid_body("meta")
        if len(meta) != 1:
            raise errors.BadRequest("Request body must contain exactly one metadata item.")
        if key not in meta:
            raise errors.BadRequest("Request body and URI mismatch")
        server_metadata.update_metadata(self.ctx, instance, meta)
        return Response({"meta": meta})

    def delete(self, request: Request, server_id: str, key: str) -> Response:
        instance = self.authorized_server(server_id, "compute:server_metadata:delete")
        server_metadata.delete_item(self.ctx, instance, key)
        return Response(status=204)


class ServerIps(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        return Response({"addresses": self._addresses(server_id, "compute:ips:index")})

    def _addresses(self, server_id: str, rule: str) -> dict:
        instance = self.authorized_server(server_id, rule)
        uuid = str(instance.uuid)
        return bodies.addresses(bodies.ports_of_servers([uuid]).get(uuid, []), extended=False)


class ServerIpsNetwork(ServerIps):
    def get(  # type: ignore[override]  # its URL has one more segment than ServerIps'
        self, request: Request, server_id: str, network: str
    ) -> Response:
        addresses = self._addresses(server_id, "compute:ips:show")
        if network not in addresses:
            raise errors.NotFound("Instance is not a member of specified network")
        return Response({network: addresses[network]})


urlpatterns = [
    path("/servers/<str:server_id>/metadata", ServerMetadata.as_view()),
    path("/servers/<str:server_id>/metadata/<str:key>", ServerMetadataItem.as_view()),
    path("/servers/<str:server_id>/ips", ServerIps.as_view()),
    path("/servers/<str:server_id>/ips/<str:network>", ServerIpsNetwork.as_view()),
]
