"""Server groups of the selected project: list with members, create, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.compute import server_groups
from cloud.compute.models import Instance
from cloud.identity.context import RequestContext

from .context import dashboard_view
from .forms import ServerGroupForm, attach


def _page(request: HttpRequest, ctx: RequestContext, form=None, status=200) -> HttpResponse:
    groups = server_groups.list_groups(ctx)
    members = server_groups.members_of(groups)
    uuids = [u for ids in members.values() for u in ids]
    names = {str(pk): name for pk, name in
             Instance.objects.filter(pk__in=uuids).values_list("pk", "display_name")}
    return render(request, "dashboard/server_groups.html", {
        "groups": [
            (g, [(u, names.get(u, u)) for u in members[str(g.uuid)]])
            for g in groups
        ],
        "form": form or ServerGroupForm(),
    }, status=status)


@require_GET
@dashboard_view("compute:server_groups:index")
def group_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _page(request, ctx)


@require_POST
@dashboard_view("compute:server_groups:create")
def group_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = ServerGroupForm(request.POST)
    if form.is_valid():
        try:
            server_groups.create_group(ctx, form.cleaned_data["name"], form.cleaned_data["policy"])
        except (errors.BadRequest, errors.OverLimit) as exc:
            attach(form, exc)
        else:
            messages.success(request, f"Server group {form.cleaned_data['name']} created.")
            return redirect("/server-groups/")
    return _page(request, ctx, form, status=400)


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:server_groups:delete")
def group_delete(request: HttpRequest, ctx: RequestContext, group_id: str) -> HttpResponse:
    group = server_groups.get_group(ctx, group_id)
    if request.method == "POST":
        server_groups.delete_group(ctx, group)
        messages.success(request, f"Server group {group.name} deleted.")
        return redirect("/server-groups/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete server group {group.name}?",
        "question": "Its members keep running; they are simply no longer placed together or apart.",
        "button": "Delete server group",
        "cancel": "/server-groups/",
    })
