"""The launch dialog: a form checked as the user fills it in (quota shown), and the launch itself
through `create_servers`, the service behind POST /servers."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cloud import errors
from cloud.compute import boot_volumes, servers
from cloud.identity.context import RequestContext

from .context import dashboard_view
from .forms import AUTO_NETWORK, LaunchForm, attach

# Which form field a service's refusal is about, by a word its message uses.
_FIELD_BY_WORD = [
    ("Security group", "security_groups"), ("Port ", "port"),
    ("Flavor", "flavor"), ("Image", "image"), ("key_name", "key_name"), ("Network", "networks"),
    ("availability zone", "availability_zone"), ("group", "server_group"),
]


def _request_for(form: LaunchForm) -> servers.ServerRequest:
    data = form.cleaned_data
    # Horizon's order: the chosen networks (a new port on each), then the chosen port.
    networks: list[dict] = [{"uuid": n} for n in data.get("networks") or []]
    if data.get("port"):
        networks.append({"port": data["port"]})
    hints = {"group": data["server_group"]} if data.get("server_group") else {}
    image_id, devices = data.get("image") or "", []
    keep = not data.get("delete_on_termination")
    if data.get("boot_volume"):
        image_id = ""
        devices = [boot_volumes.DeviceRequest(source_type="volume", uuid=data["boot_volume"],
                                              boot_index=0, delete_on_termination=not keep)]
    elif data.get("new_volume"):
        flavor = form.chosen_flavor
        size = data.get("volume_size") or max(flavor.root_gb if flavor else 1, 1)
        devices = [boot_volumes.DeviceRequest(source_type="image", uuid=image_id, boot_index=0,
                                              volume_size=size, delete_on_termination=not keep)]
        image_id = ""
    return servers.ServerRequest(
        name=data["name"],
        image_id=image_id,
        block_devices=devices,
        flavor_ref=data["flavor"],
        networks=networks or AUTO_NETWORK,
        key_name=data.get("key_name") or None,
        user_data=form.user_data_b64(),
        availability_zone=data.get("availability_zone") or None,
        min_count=data["count"],
        max_count=data["count"],
        scheduler_hints=hints,
        security_groups=list(data.get("security_groups") or []) or None,
    )


def _field_for(exc: errors.KumoError) -> str | None:
    if isinstance(exc, errors.OverLimit):
        return "count"
    for word, field in _FIELD_BY_WORD:
        if word in exc.message:
            return field
    return None


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:servers:create")
def launch(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = LaunchForm(ctx, request.POST or None)
    dialog = bool(request.headers.get("HX-Request"))
    if request.method == "POST" and form.is_valid():
        try:
            created = servers.create_servers(ctx, _request_for(form))
        except errors.Forbidden as exc:
            if not isinstance(exc, errors.OverLimit):
                raise
            attach(form, exc, "count")
        except (errors.BadRequest, errors.Conflict, errors.NotFound) as exc:
            attach(form, exc, _field_for(exc))
        else:
            names = ", ".join(i.display_name for i in created)
            if dialog:
                # The dialog closes; the new rows arrive over the websocket like any change.
                response = HttpResponse(status=204)
                response["HX-Trigger"] = json.dumps({"kumo:done": {"message": f"Launching {names}."}})
                return response
            messages.success(request, f"Launching {names}.")
            return redirect("/instances/")
    if dialog:
        # htmx swaps only 2xx answers: the form with its errors comes back as 200.
        return render(request, "dashboard/fragments/launch_form.html",
                      {"form": form, "dialog": True})
    return render(request, "dashboard/launch.html", {"form": form},
                  status=400 if form.errors else 200)


@require_POST
@dashboard_view("compute:servers:create")
def launch_check(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    """Check the form as it is being filled in: the quota with this launch added, and what would
    be refused. Creates nothing.

    Every field's errors are sent again (out of band, into the form), so an error goes as soon as
    the field is corrected. Before the first submit only the fields the user filled in are judged
    ("required" would scold every field not reached yet); after one, all of them."""
    form = LaunchForm(ctx, request.POST)
    form.is_valid()
    submitted = bool(request.POST.get("submitted"))
    touched = {k for k, v in request.POST.items() if v and k not in ("csrfmiddlewaretoken",
                                                                      "submitted")}
    field_errors = [
        (form[name], form.errors.get(name, []) if submitted or name in touched else [])
        for name in form.fields
    ]
    problems = [
        ("", message) for message in form.errors.get("__all__", [])
    ]
    return render(request, "dashboard/fragments/launch_check.html",
                  {"form": form, "problems": problems, "field_errors": field_errors})
