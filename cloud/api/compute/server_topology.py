"""GET /servers/{id}/topology (2.78+): the server's NUMA topology. Kumo pins no guest to NUMA
cells, so every server has none: no nodes and no page size, as Nova answers for such a server."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from ..base import ComputeView


class ServerTopology(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        self.require_version("2.78")
        self.authorized_server(server_id, "compute:server_topology:index")
        return Response({"nodes": [], "pagesize_kb": None})


urlpatterns = [path("/servers/<str:server_id>/topology", ServerTopology.as_view())]
