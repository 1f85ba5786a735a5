"""Host failures in the dashboard (issue 15): each compute host's state in words on the hypervisors
page, the operator's "Confirm host is off" (what the manual fencing driver waits for), a page per
failure that follows the recovery of its guests as it happens, and the history of recoveries.

The host watch (cloud/conductor/host_watch.py) does the work; this module only shows it and passes
on the confirmation, which is `cloud.compute.host_failures.confirm_down`: the same as forcing the
service down with `openstack compute service set --down`, so it is offered under that call's rule.
A failure's page is pushed over /ws/host-moves/?failure=<id> (consumers.HostMovesConsumer) at each
events.HOST_MOVES_CHANGED of its host: nothing polls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from cloud import errors
from cloud.compute import host_failures as hf
from cloud.compute.models import HostFailure, Service
from cloud.identity import policy
from cloud.identity.context import RequestContext

from .context import dashboard_view

# Seeing failures needs what seeing the hosts needs; confirming one is forcing a service down, so
# it needs the rule of PUT /os-services (a member must not be able to start evacuations).
VIEW_RULE = "compute:host_failures:index"
CONFIRM_RULE = "compute:services"

# A person's word is what these wait for (awaiting-confirmation), or what cuts the wait short: the
# watch takes a suspected or fence-failed host whose service is forced down as fenced. Not while a
# fence is under way (its answer decides), nor once fenced (nothing is left to confirm).
CONFIRMABLE = frozenset({hf.SUSPECTED, hf.FENCE_FAILED, hf.AWAITING_CONFIRMATION})
_FENCED = frozenset({hf.FENCED, hf.RECOVERING, hf.RECOVERED})

HISTORY_LENGTH = 100


@dataclass(frozen=True)
class HostState:
    """What the hypervisors page says of one compute host."""

    words: str
    badge: str  # the badge's CSS class: green up, red down, amber fenced, plain disabled
    failure: HostFailure | None = None

    @property
    def confirmable(self) -> bool:
        return self.failure is not None and self.failure.status in CONFIRMABLE


def host_state(service: Service, failure: HostFailure | None, now: datetime) -> HostState:
    """A host's state in words: its open failure's (host_failures.HOST_STATE) when it has one,
    else up, down (no heartbeat), forced down or disabled."""
    if failure is not None:
        words = hf.HOST_STATE.get(failure.status, failure.status)
        return HostState(words, "warn" if failure.status in _FENCED else "s-ERROR", failure)
    if service.forced_down:
        return HostState("forced down", "s-ERROR")
    seen = service.last_seen_up
    if seen is None or (now - seen).total_seconds() > settings.KUMO_SERVICE_DOWN_TIME:
        return HostState("down (no heartbeat)", "s-ERROR")
    if service.disabled:
        return HostState("disabled", "")
    return HostState("up", "s-ACTIVE")


def states_by_host(services: Iterable[Service]) -> dict[str, HostState]:
    """Each host's state; the open failures in one query."""
    now = timezone.now()
    failures = {f.host: f for f in hf.open_failures()}
    return {s.host: host_state(s, failures.get(s.host), now) for s in services}


def summary(failure: HostFailure) -> dict[str, int]:
    """How many guests are in each state of the recovery (pending, evacuating, done, failed,
    left), and in all."""
    counts = Counter(str(g.get("state", "")) for g in failure.guests)
    shown = {state: counts.get(state, 0)
             for state in (hf.PENDING, hf.EVACUATING, hf.DONE, hf.FAILED, hf.LEFT)}
    return {**shown, "total": len(failure.guests)}


def timeline(failure: HostFailure) -> list[tuple[str, datetime | None]]:
    return [("Detected", failure.detected_at), ("Fenced", failure.fenced_at),
            ("Guests recovered", failure.recovered_at), ("Closed", failure.closed_at)]


def failure_context(failure: HostFailure) -> dict[str, Any]:
    is_open = failure.closed_at is None
    return {
        "failure": failure,
        "state": hf.HOST_STATE.get(failure.status, failure.status) if is_open else failure.status,
        "is_open": is_open,
        "guests": failure.guests,
        "summary": summary(failure),
        "timeline": timeline(failure),
    }


def render_failure(failure: HostFailure) -> str:
    """A failure's state, timeline and guests, as the page shows them and the websocket pushes
    them."""
    return render_to_string("dashboard/fragments/host_failure.html", failure_context(failure))


@require_GET
@dashboard_view(VIEW_RULE)
def failure_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    failures = hf.history(limit=HISTORY_LENGTH)
    return render(request, "dashboard/admin/host_failures.html", {
        "failures": [(f, summary(f)) for f in failures],
    })


@require_GET
@dashboard_view(VIEW_RULE)
def failure_detail(request: HttpRequest, ctx: RequestContext, failure_id: str) -> HttpResponse:
    failure = hf.get(failure_id)
    return render(request, "dashboard/admin/host_failure.html", {
        **failure_context(failure),
        "can_confirm": (failure.closed_at is None and failure.status in CONFIRMABLE
                        and policy.allowed(ctx, CONFIRM_RULE)),
        "confirmable": sorted(CONFIRMABLE),
    })


@require_POST
@dashboard_view(CONFIRM_RULE)
def confirm_down(request: HttpRequest, ctx: RequestContext, host: str) -> HttpResponse:
    """The operator's word that `host` is off: its service is forced down, and the host watch's
    next pass takes the host as fenced and recovers its guests. Refused (as a message) while the
    host still reports, or when no failure of the host waits for it."""
    failure = hf.open_failure(host)
    back = "/manage/hypervisors/" if request.POST.get("from") == "hosts" else (
        f"/manage/host-failures/{failure.uuid}/" if failure else "/manage/host-failures/")
    if failure is None or failure.status not in CONFIRMABLE:
        messages.error(request, f"Nothing waits for a confirmation that {host} is off.")
        return redirect(back)
    try:
        hf.confirm_down(host)
    except (errors.Conflict, errors.NotFound) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{host} is confirmed off and forced down: its guests are "
                                  "recovered from the host watch's next pass.")
    return redirect(back)
