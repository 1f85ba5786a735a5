"""Host failures, Kumo's extension to the compute API (admins only): what the host watch knows
about each compute host that stopped reporting — fencing, the recovery of its guests, its return.

    GET /os-host-failures[?host=H]   every failure, newest first (open ones have no closed_at)
    GET /os-host-failures/{id}       one, with each guest's part in the recovery

Confirming that a host is off (what the manual fencing driver waits for) is Nova's own call:
`PUT /os-services/{id}` with `forced_down: true` (`openstack compute service set --down`).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import host_failures
from cloud.compute.models import HostFailure

from ..base import ComputeView
from . import bodies


def failure_body(failure: HostFailure, *, guests: bool) -> dict:
    body = {
        "id": str(failure.uuid),
        "host": failure.host,
        "status": failure.status,
        "message": failure.message,
        "fencing_driver": failure.fencing_driver,
        "fence_attempts": failure.fence_attempts,
        "detected_at": bodies.iso(failure.detected_at),
        "fenced_at": bodies.iso(failure.fenced_at),
        "recovered_at": bodies.iso(failure.recovered_at),
        "closed_at": bodies.iso(failure.closed_at),
    }
    if guests:
        body["guests"] = [{k: g.get(k, "") for k in ("id", "name", "ha", "state", "dest",
                                                     "message")} for g in failure.guests]
    return body


class HostFailureList(ComputeView):
    query_params = {"GET": ("host",)}

    def get(self, request: Request) -> Response:
        self.authorize("compute:host_failures:index")
        rows = host_failures.history(request.query_params.get("host"), limit=1000)
        return Response({"host_failures": [failure_body(f, guests=False) for f in rows]})


class HostFailureItem(ComputeView):
    def get(self, request: Request, failure_id: str) -> Response:
        self.authorize("compute:host_failures:show")
        return Response({"host_failure": failure_body(host_failures.get(failure_id),
                                                      guests=True)})


urlpatterns = [
    path("/os-host-failures", HostFailureList.as_view()),
    path("/os-host-failures/<str:failure_id>", HostFailureItem.as_view()),
]
