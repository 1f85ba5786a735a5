"""Host failures as operators see them: the statuses one goes through, the guests it recovers,
and the operator's confirmation that a host is off (the manual fencing driver's answer).

    suspected ──fence──▶ fencing ──confirmed──▶ fenced ──▶ recovering ──▶ recovered
        │                   │ failed                                         │
        │                   ▼                                                │ the host reports again
        │              fence-failed ──(KUMO_FENCE_ATTEMPTS)──▶ awaiting-confirmation
        │                   (retried)        manual driver ──▶      │ forced down by a person
        │                                                           ▼
        └── the host reports again before it was fenced: cleared    fenced …      ──▶ rejoined

cloud/conductor/host_watch.py moves a failure along; every move is a compare-and-swap of its
status. A failure is open until the host reports again (cleared or rejoined): then `closed_at` is
set, and the record stays as the host's history.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from cloud import errors, events
from cloud.ids import parse_uuid

from . import evacuation
from .models import COMPUTE_BINARY, HostFailure, Instance, Service

SUSPECTED = "suspected"
FENCING = "fencing"
FENCE_FAILED = "fence-failed"
AWAITING_CONFIRMATION = "awaiting-confirmation"
FENCED = "fenced"
RECOVERING = "recovering"
RECOVERED = "recovered"
CLEARED = "cleared"  # closed: the host came back before it was fenced; nothing moved
REJOINED = "rejoined"  # closed: the host came back after its guests were recovered

# A guest's part in the recovery.
PENDING = "pending"  # HA, waiting for its turn
EVACUATING = "evacuating"
DONE = "done"
FAILED = "failed"
LEFT = "left"  # not marked for HA: stays until an operator evacuates it (or the host returns)

# What the dashboard says a host is, by its open failure's status.
HOST_STATE = {
    SUSPECTED: "down, fencing soon",
    FENCING: "down, fencing",
    FENCE_FAILED: "down, fencing failed (retrying)",
    AWAITING_CONFIRMATION: "down, awaiting fencing confirmation",
    FENCED: "fenced",
    RECOVERING: "fenced, recovering its guests",
    RECOVERED: "fenced, guests recovered",
}


def silent(service: Service, now: datetime) -> bool:
    """Whether the host has missed its heartbeats for KUMO_HOST_FAILURE_AFTER seconds (whatever
    forced_down says: a forced-down host that reports is alive)."""
    seen = service.last_seen_up
    return seen is None or (now - seen).total_seconds() > settings.KUMO_HOST_FAILURE_AFTER


def open_failures() -> QuerySet[HostFailure]:
    return HostFailure.objects.filter(closed_at__isnull=True)


def open_failure(host: str) -> HostFailure | None:
    return open_failures().filter(host=host).first()


def history(host: str | None = None, limit: int = 50) -> list[HostFailure]:
    qs = HostFailure.objects.all()
    if host:
        qs = qs.filter(host=host)
    return list(qs[:limit])


def get(failure_id: str) -> HostFailure:
    """One failure by its id; 404 for an unknown or malformed one."""
    parsed = parse_uuid(failure_id)
    failure = HostFailure.objects.filter(uuid=parsed).first() if parsed else None
    if failure is None:
        raise errors.NotFound(f"Host failure {failure_id} could not be found.")
    return failure


def guests_of(host: str) -> list[dict]:
    """Every server of the host, HA ones first (they are recovered in that order)."""
    parts = [{"id": str(i.uuid), "name": i.display_name, "ha": evacuation.is_ha(i),
              "state": PENDING, "dest": "", "message": ""}
             for i in Instance.objects.filter(host=host, deleted=False).order_by("created_at")]
    for part in parts:
        if not part["ha"]:
            part["state"] = LEFT
            part["message"] = "not marked for HA: evacuate it by hand, or it returns with its host"
    return sorted(parts, key=lambda p: not p["ha"])


def confirm_down(host: str) -> Service:
    """An operator's word that `host` is off (the dashboard's Confirm; the API's forced_down is
    the same): its service is forced down, which confirms a failure waiting for a person. 409 while
    the host still reports: a host that answers is not off."""
    service = Service.objects.filter(host=host, binary=COMPUTE_BINARY).first()
    if service is None:
        raise errors.NotFound(f"Compute host {host} not found.")
    if not silent(service, timezone.now()):
        raise errors.Conflict(f"{host} is still reporting: it is not down.")
    Service.objects.filter(pk=service.pk).update(forced_down=True)
    HostFailure.objects.filter(host=host, closed_at__isnull=True).update(
        confirmed_by_operator=True)
    events.host_moves_changed(host)
    service.forced_down = True
    return service
