"""The admin "System" page (/manage/system/) and the JSON it charts (/manage/system/data), thin
over system.py. The page fetches the JSON every `STEP_SECONDS`: these are counts that change all
the time with no event to announce them (the websockets of live.py push a change when one is
committed), so asking on the sampling step is the live update, as the topology page does."""

from __future__ import annotations

import math

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cloud.identity.context import RequestContext

from . import system
from .context import dashboard_view

# Admins only, as the other operator pages: the counts cover every project.
RULE = "compute:hypervisors"


@require_GET
@dashboard_view(RULE)
def system_page(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return render(request, "dashboard/admin/system.html", {"step": system.STEP_SECONDS})


@require_GET
@dashboard_view(RULE)
def system_data(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    """?since=<the newest point's "at"> answers with the newer points only."""
    since = None
    if "since" in request.GET:
        try:
            since = float(request.GET["since"])
        except ValueError:
            since = math.nan
        if not math.isfinite(since):
            message = "since must be a number of seconds since the epoch."
            return JsonResponse({"badRequest": {"code": 400, "message": message}}, status=400)
    response = JsonResponse(system.snapshot(since=since))
    response["Cache-Control"] = "no-store"
    return response
