"""Host drains in the dashboard (issue 13): a Drain button per host on the hypervisors page, a
confirmation with the reason, and a page that follows each guest's move as it happens.

The moves are the scheduler's (cloud/scheduler/drains.py), exactly as `POST /os-host-drains` makes
them; this module only asks and shows. The page is pushed each change over the websocket
/ws/host-moves/ (consumers.HostMovesConsumer), which re-renders the guests' table whenever a move
on the drained host announces events.HOST_MOVES_CHANGED: nothing polls.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST

from cloud import errors
from cloud.compute import host_drains
from cloud.compute.models import HostDrain
from cloud.identity.context import RequestContext
from cloud.scheduler import drains

from .context import dashboard_view
from .forms import attach


class DrainForm(forms.Form):
    reason = forms.CharField(
        max_length=255, required=False, label="Reason",
        help_text="Shown as the host's disabled reason (e.g. “kernel update”).")


def running_by_host() -> dict[str, HostDrain]:
    """The drain under way on each host that has one."""
    return {d.host: d for d in host_drains.running()}


def recent(limit: int = 10) -> list[HostDrain]:
    return list(host_drains.list_drains()[:limit])


def guests_context(drain: HostDrain) -> dict[str, Any]:
    return {"drain": drain, "guests": host_drains.guests_shown(drain),
            "summary": host_drains.summary(drain)}


def render_guests(drain: HostDrain) -> str:
    """The table of a drain's guests, as the page shows it and as the websocket pushes it."""
    return render_to_string("dashboard/fragments/drain_guests.html", guests_context(drain))


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:host_drains:create")
def drain_start(request: HttpRequest, ctx: RequestContext, host: str) -> HttpResponse:
    form = DrainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            drain = drains.start(ctx, host, form.cleaned_data["reason"])
        except (errors.Conflict, errors.NotFound) as exc:
            attach(form, exc)
        else:
            messages.success(request, f"Draining {host}: {len(drain.guests)} guest"
                             f"{'' if len(drain.guests) == 1 else 's'} to move.")
            return redirect(f"/manage/drains/{drain.uuid}/")
    guests = host_drains.guests_on(host)
    return render(request, "dashboard/admin/drain_start.html",
                  {"host": host, "form": form, "guests": guests},
                  status=400 if form.errors else 200)


@dashboard_view("compute:host_drains:show")
def drain_detail(request: HttpRequest, ctx: RequestContext, drain_id: str) -> HttpResponse:
    drain = host_drains.get(drain_id)
    return render(request, "dashboard/admin/drain.html",
                  {**guests_context(drain), "can_cancel": drain.status == HostDrain.RUNNING})


@require_POST
@dashboard_view("compute:host_drains:delete")
def drain_cancel(request: HttpRequest, ctx: RequestContext, drain_id: str) -> HttpResponse:
    drain = host_drains.cancel(host_drains.get(drain_id))
    messages.success(request, f"The drain of {drain.host} starts no further move.")
    return redirect(f"/manage/drains/{drain.uuid}/")
