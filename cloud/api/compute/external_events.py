"""POST /os-server-external-events (admin): events for servers from other services. 200 when every
event was accepted, 207 when some were not; each event carries its own code (200, 400, 404, 422)
and status. Event names by microversion: the network events from 2.1, volume-extended 2.51,
power-update 2.76, accelerator-request-bound 2.82, volume-reimaged 2.93."""

from __future__ import annotations

import copy

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import external_events

from ..base import ComputeView, Versioned

_NAMES = ["network-changed", "network-vif-plugged", "network-vif-unplugged",
          "network-vif-deleted"]


def _schema(names: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["name", "server_uuid"],
            "properties": {
                "name": {"type": "string", "enum": copy.copy(names)},
                "server_uuid": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
                "tag": {"type": "string", "maxLength": 255},
            },
            "additionalProperties": False,
        }}},
        "additionalProperties": False,
    }


_STEPS = [("2.1", _NAMES), ("2.51", ["volume-extended"]), ("2.76", ["power-update"]),
          ("2.82", ["accelerator-request-bound"]), ("2.93", ["volume-reimaged"])]


def _versioned() -> Versioned:
    names: list[str] = []
    steps = []
    for version, added in _STEPS:
        names = names + added
        steps.append((version, _schema(names)))
    return Versioned(*steps)


class ServerExternalEvents(ComputeView):
    body_schemas = {"POST": _versioned()}

    def post(self, request: Request) -> Response:
        self.authorize("compute:server_external_events:create")
        events = self.valid_body("events")
        outcomes = external_events.deliver(self.ctx, events)
        answered = []
        for event, outcome in zip(events, outcomes, strict=True):
            answered.append({**event, "code": outcome.code, "status": outcome.status})
        status = 200 if all(o.code == 200 for o in outcomes) else 207
        return Response({"events": answered}, status=status)


urlpatterns = [path("/os-server-external-events", ServerExternalEvents.as_view())]
