"""/servers/{id}/shares (2.97+): shared file systems (Manila shares) attached to a server. This
cloud has no shared file system service, so no server has a share: the list is empty, a share is
not found, and attaching one is refused (400) rather than accepted and forgotten."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors

from ..base import ComputeView

_ATTACH = {
    "type": "object",
    "required": ["share"],
    "properties": {"share": {
        "type": "object",
        "required": ["share_id"],
        "properties": {"share_id": {"type": "string", "format": "uuid"},
                       "tag": {"type": "string", "minLength": 1, "maxLength": 255,
                               "pattern": "^[a-zA-Z0-9-]*$"}},
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}


class ServerShareList(ComputeView):
    body_schemas = {"POST": _ATTACH}

    def get(self, request: Request, server_id: str) -> Response:
        self.require_version("2.97")
        self.authorized_server(server_id, "compute:servers:show")
        return Response({"shares": []})

    def post(self, request: Request, server_id: str) -> Response:
        self.require_version("2.97")
        self.authorized_server(server_id, "compute:servers:update")
        share = self.valid_body("share")
        raise errors.BadRequest(f"Share {share['share_id']} cannot be attached: this cloud has "
                                "no shared file system service (Manila).")


class ServerShareItem(ComputeView):
    def get(self, request: Request, server_id: str, share_id: str) -> Response:
        self.require_version("2.97")
        instance = self.authorized_server(server_id, "compute:servers:show")
        raise errors.NotFound(f"Share {share_id} is not attached to server {instance.uuid}.")

    def delete(self, request: Request, server_id: str, share_id: str) -> Response:
        self.require_version("2.97")
        instance = self.authorized_server(server_id, "compute:servers:update")
        raise errors.NotFound(f"Share {share_id} is not attached to server {instance.uuid}.")


urlpatterns = [
    path("/servers/<str:server_id>/shares", ServerShareList.as_view()),
    path("/servers/<str:server_id>/shares/<str:share_id>", ServerShareItem.as_view()),
]
