"""Operator pages: flavors, created whole (sizes, ephemeral disk, swap, description, extra specs,
public or private to chosen projects) and edited within what Nova allows.

Nova flavors cannot change, except their description, their extra specs and their project access,
which are edited in place. A change of anything else (name, sizes, public) replaces the flavor —
deleted and created again under the same id, extra specs and access carried over — as Horizon's
flavor edit did; the page says so before the change is made. Servers keep the flavor they booted
with either way.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from cloud import errors
from cloud.compute import flavor_edits, flavors
from cloud.compute.models import Flavor
from cloud.identity import accounts as identity
from cloud.identity.context import RequestContext

from .context import authorize, dashboard_view
from .forms import FlavorForm, attach, format_specs

# FlavorForm field → create_flavor keyword, for the fields Nova never changes in place.
_CREATE_KEYWORDS = {"name": "name", "vcpus": "vcpus", "ram": "ram", "disk": "disk",
                    "ephemeral": "ephemeral", "swap": "swap", "is_public": "is_public"}


def _project_choices() -> list[tuple[str, str]]:
    return [(str(p.pk), p.name) for p in identity.list_projects().order_by("name")]


def _initial(flavor: Flavor) -> dict[str, Any]:
    return {
        "name": flavor.name, "flavorid": flavor.flavorid, "vcpus": flavor.vcpus,
        "ram": flavor.memory_mb, "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb,
        "swap": flavor.swap, "is_public": flavor.is_public, "description": flavor.description,
        "projects": flavor_edits.projects_with_access(flavor),
        "extra_specs": format_specs(flavor.extra_specs),
    }


def _rows(ctx: RequestContext) -> list[tuple[Flavor, list[str]]]:
    names = dict(_project_choices())
    rows = flavors.list_flavors(ctx, is_public=None, min_disk=None, min_ram=None)
    return [(f, [names.get(p, p) for p in flavor_edits.projects_with_access(f)]) for f in rows]


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:flavors:create")
def flavor_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = FlavorForm(_project_choices(), request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            flavor = flavors.create_flavor(
                flavorid=data["flavorid"] or None, description=data["description"] or None,
                **{keyword: data[field] for field, keyword in _CREATE_KEYWORDS.items()},
            )
        except errors.Conflict as exc:
            attach(form, exc, "name")
        else:
            if data["extra_specs"]:
                flavors.set_extra_specs(flavor, data["extra_specs"])
            if data["projects"]:
                flavor_edits.set_access(flavor, data["projects"])
            messages.success(request, f"Flavor {flavor.name} created.")
            return redirect("/manage/flavors/")
    return render(request, "dashboard/admin/flavors.html", {"rows": _rows(ctx), "form": form},
                  status=400 if form.errors else 200)


# An edit may replace the flavor, change its description, extra specs or access: it needs every
# rule the API would ask for one of those.
_EDIT_RULES = ("compute:flavors:create", "compute:flavors:delete", "compute:flavors:update",
               "compute:flavor_extra_specs:update", "compute:flavor_access:add",
               "compute:flavor_access:remove")


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:flavors:update")
def flavor_edit(request: HttpRequest, ctx: RequestContext, flavor_id: str) -> HttpResponse:
    for rule in _EDIT_RULES:
        authorize(ctx, rule)
    flavor = flavors.get_flavor(ctx, flavor_id)
    form = FlavorForm(_project_choices(), request.POST or None, initial=_initial(flavor),
                      editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        edit = flavor_edits.FlavorEdit(
            immutable={keyword: data[field] for field, keyword in _CREATE_KEYWORDS.items()},
            description=data["description"] or None,
            extra_specs=data["extra_specs"],
            projects=data["projects"],
        )
        try:
            flavor, replaced = flavor_edits.edit_flavor(flavor, edit)
        except errors.KumoError as exc:
            attach(form, exc)
        else:
            if replaced:
                messages.success(request, f"Flavor {flavor.name} replaced: Nova flavors cannot "
                                 f"change {', '.join(replaced)}, so it was deleted and created "
                                 f"again with ID {flavor.flavorid}. Servers keep their size.")
            else:
                messages.success(request, f"Flavor {flavor.name} updated in place.")
            return redirect("/manage/flavors/")
    return render(request, "dashboard/admin/flavor_edit.html", {"flavor": flavor, "form": form},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:flavors:delete")
def flavor_delete(request: HttpRequest, ctx: RequestContext, flavor_id: str) -> HttpResponse:
    flavor = flavors.get_flavor(ctx, flavor_id)
    if request.method == "POST":
        flavors.delete_flavor(flavor)
        messages.success(request, f"Flavor {flavor.name} deleted.")
        return redirect("/manage/flavors/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete flavor {flavor.name}?",
        "question": "Servers already running with it keep their size.",
        "button": "Delete flavor", "cancel": "/manage/flavors/",
    })
