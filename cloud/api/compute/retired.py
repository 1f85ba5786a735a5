"""APIs Nova retired: it answers 410 Gone to them at every microversion (they served nova-network,
cells v1, agents, certificates and the like), so Kumo answers the same rather than a 404 that would
suggest a typo."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors

from ..base import ComputeView


class Gone(errors.KumoError):
    status = 410
    compute_key = "computeFault"  # Nova names no fault for 410, so its generic one


class Retired(ComputeView):
    def _gone(self, request: Request, **_: str) -> Response:
        raise Gone("This API was removed from the Compute API; see the REST API version history.")

    get = post = put = delete = _gone


RETIRED_ROUTES = [
    "/os-agents", "/os-agents/<str:item>",
    "/os-cells", "/os-cells/<str:item>", "/os-cells/<str:item>/capacities",
    "/os-certificates", "/os-certificates/<str:item>",
    "/os-cloudpipe", "/os-cloudpipe/<str:item>",
    "/os-fixed-ips/<str:item>", "/os-fixed-ips/<str:item>/action",
    "/os-floating-ip-dns", "/os-floating-ip-dns/<str:item>",
    "/os-floating-ip-dns/<str:domain>/entries/<str:item>",
    "/os-floating-ips-bulk", "/os-floating-ips-bulk/<str:item>",
    "/os-fping", "/os-fping/<str:item>",
    "/os-security-group-default-rules", "/os-security-group-default-rules/<str:item>",
    "/os-networks/add", "/os-networks/<str:item>/action",
    "/servers/<str:server_id>/consoles", "/servers/<str:server_id>/consoles/<str:item>",
    "/servers/<str:server_id>/os-virtual-interfaces",
]

urlpatterns = [path(route, Retired.as_view()) for route in RETIRED_ROUTES]
