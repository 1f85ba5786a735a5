"""Events other services send about servers (Nova's os-server-external-events): the network service
saying a port changed or was plugged, the volume service that a volume grew or was re-imaged,
Ironic's power updates, Cyborg's accelerator bindings.

Each event gets its own answer, as in Nova: 404 for an unknown server, 422 for one without a host
(nothing could deliver it), 400 for an event that needs a tag and has none, 200 when accepted. A
server's owner sees the accepted ones that Nova records as actions (a volume grew; power on/off).
Kumo's hosts do not wait for port events (they plug ports themselves), so network events are
accepted and need nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from cloud.identity.context import RequestContext
from cloud.ids import canonical_uuid

from .action_records import record_action
from .models import Instance

NEEDS_TAG = frozenset({"volume-extended", "power-update", "accelerator-request-bound"})
# The actions Nova records for some events (the others leave no trace on the server).
_RECORDED = {"volume-extended": "extend_volume"}
_POWER = {"POWER_ON": "start", "POWER_OFF": "stop"}


@dataclass
class Outcome:
    code: int
    status: str


def deliver(ctx: RequestContext, events: list[dict]) -> list[Outcome]:
    """One outcome per event, in order."""
    uuids = {canonical_uuid(e["server_uuid"]) for e in events} - {None}
    found = {str(i.uuid): i for i in Instance.objects.filter(uuid__in=uuids, deleted=False)}
    outcomes: list[Outcome] = []
    with transaction.atomic():
        for event in events:
            instance = found.get(canonical_uuid(event["server_uuid"]) or "")
            if instance is None:
                outcomes.append(Outcome(404, "failed"))
            elif event["name"] in NEEDS_TAG and event.get("tag") is None:
                outcomes.append(Outcome(400, "failed"))
            elif not instance.host:
                outcomes.append(Outcome(422, "failed"))
            else:
                _record(ctx, instance, event)
                outcomes.append(Outcome(200, "completed"))
    return outcomes


def _record(ctx: RequestContext, instance: Instance, event: dict) -> None:
    action = _RECORDED.get(event["name"])
    if event["name"] == "power-update":
        action = _POWER.get(event.get("tag") or "")
    if action is not None:
        record_action(ctx, instance, action)
