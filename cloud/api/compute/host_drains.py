"""Host drains, Kumo's extension to the compute API (admins only): empty a host for maintenance in
one request — it is disabled and every guest moves away (cloud/scheduler/drains.py) — then follow
each guest's move, or cancel the moves not started yet.

    POST   /os-host-drains            {"host_drain": {"host": "compute-1", "reason": "patching"}}
    GET    /os-host-drains[?host=H]   every drain, newest first
    GET    /os-host-drains/{id}       one, with each guest's state and its migration's progress
    DELETE /os-host-drains/{id}       cancel: no further move starts (202)

Nova has no such call (its client loops over `nova live-migration` per guest); the shapes follow
Nova's conventions: a wrapped body, 202 for work that goes on, admin-only as os-migrations.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import host_drains
from cloud.compute.models import HostDrain
from cloud.scheduler import drains

from ..base import ComputeView
from . import bodies

_CREATE = {
    "type": "object",
    "required": ["host_drain"],
    "properties": {"host_drain": {
        "type": "object",
        "required": ["host"],
        "properties": {
            "host": {"type": "string", "minLength": 1, "maxLength": 255},
            "reason": {"type": "string", "maxLength": 255},
        },
        "additionalProperties": False,
    }},
    "additionalProperties": False,
}


def drain_body(drain: HostDrain, *, guests: bool) -> dict:
    body = {
        "id": str(drain.uuid),
        "host": drain.host,
        "status": drain.status,
        "reason": drain.reason,
        "user_id": (drain.requested_by or {}).get("user_id"),
        "summary": host_drains.summary(drain),
        "created_at": bodies.iso(drain.created_at),
        "updated_at": bodies.iso(drain.updated_at),
        "finished_at": bodies.iso(drain.finished_at),
    }
    if guests:
        body["guests"] = host_drains.guests_shown(drain)
    return body


class HostDrainList(ComputeView):
    body_schemas = {"POST": _CREATE}
    query_params = {"GET": ("host",)}

    def get(self, request: Request) -> Response:
        self.authorize("compute:host_drains:index")
        rows = host_drains.list_drains(request.query_params.get("host"))
        return Response({"host_drains": [drain_body(d, guests=False) for d in rows]})

    def post(self, request: Request) -> Response:
        self.authorize("compute:host_drains:create")
        wanted = self.valid_body()["host_drain"]
        drain = drains.start(self.ctx, wanted["host"], wanted.get("reason", ""))
        return Response({"host_drain": drain_body(drain, guests=True)}, status=202)


class HostDrainItem(ComputeView):
    def get(self, request: Request, drain_id: str) -> Response:
        self.authorize("compute:host_drains:show")
        return Response({"host_drain": drain_body(host_drains.get(drain_id), guests=True)})

    def delete(self, request: Request, drain_id: str) -> Response:
        self.authorize("compute:host_drains:delete")
        host_drains.cancel(host_drains.get(drain_id))
        return Response(status=202)


urlpatterns = [
    path("/os-host-drains", HostDrainList.as_view()),
    path("/os-host-drains/<str:drain_id>", HostDrainItem.as_view()),
]
