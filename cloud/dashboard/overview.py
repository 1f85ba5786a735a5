"""The overview (usage against quota, as charts) and the project switcher."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from cloud.compute import quotas
from cloud.identity.context import RequestContext

from . import tables
from .context import dashboard_view, switch_project

# The four the overview charts, in the order shown: (quota resource, label, unit).
CHARTED = [
    ("instances", "Instances", ""),
    ("cores", "vCPUs", ""),
    ("ram", "RAM", "MiB"),
    ("key_pairs", "Key pairs", ""),
]


def usage_rows(ctx: RequestContext) -> list[dict]:
    limits, used = quotas.limits_and_usage(ctx.project_id, ctx.user_id)
    return [
        {"resource": resource, "label": label, "unit": unit, "used": used[resource],
         "limit": limits[resource], "unlimited": limits[resource] < 0}
        for resource, label, unit in CHARTED
    ]


@dashboard_view("compute:quotas:show")
def overview(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    recent = tables.instance_page(ctx, tables.TableQuery(per_page=5))
    return render(request, "dashboard/overview.html", {
        "usage": usage_rows(ctx),
        "recent": recent,
    })


@require_POST
@dashboard_view()
def switch(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    switch_project(request, request.POST.get("project", ""))
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    # Back to the same section, not to an item: an instance of the old project is not found here.
    section = target.split("?")[0].strip("/").split("/")[0]
    return redirect(f"/{section}/" if section else "/")
