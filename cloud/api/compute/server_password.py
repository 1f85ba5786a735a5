"""GET and DELETE /servers/{id}/os-server-password: the encrypted password a guest posts through
the metadata service. Kumo has no metadata service, so no guest ever posts one: the password is
always empty, and clearing it has nothing to clear."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from ..base import ComputeView


class ServerPassword(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        self.authorized_server(server_id, "compute:server_password:show")
        return Response({"password": ""})

    def delete(self, request: Request, server_id: str) -> Response:
        self.authorized_server(server_id, "compute:server_password:clear")
        return Response(status=204)


urlpatterns = [path("/servers/<str:server_id>/os-server-password", ServerPassword.as_view())]
