"""GET /servers/{id}/diagnostics (admin): what the hypervisor measures of a guest. Kumo's hosts do
not report it (no such host task), so the answer is Nova's for a driver that cannot: 501."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from ..base import ComputeView
from .hosts import FeatureNotSupported


class ServerDiagnostics(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        self.authorized_server(server_id, "compute:server_diagnostics")
        raise FeatureNotSupported("Feature not supported: server diagnostics")


urlpatterns = [path("/servers/<str:server_id>/diagnostics", ServerDiagnostics.as_view())]
