"""Floating IPs panel: the project's floating IPs with what they map to, allocating one from an
external network, associating it with an instance (the instance's first port, as Horizon offers
by default), disassociating and releasing it — through cloud/network/floating_ips.py, which says
why a mapping cannot be made (no router between the instance's subnet and the pool)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.compute.models import Instance
from cloud.identity.context import RequestContext
from cloud.network import floating_ips as fip_services
from cloud.network import networks as network_services
from cloud.network import ports as port_services
from cloud.network.models import FloatingIp

from .context import dashboard_view
from .forms import attach
from .network_forms import AllocateForm, AssociateForm
from .networks import READ, WRITE


def _instances(ctx: RequestContext) -> list[Instance]:
    return list(Instance.objects.filter(project_id=ctx.project_id, deleted=False)
                .order_by("display_name"))


def _list(request: HttpRequest, ctx: RequestContext, form: AllocateForm | None = None,
          status: int = 200) -> HttpResponse:
    fips = fip_services.list_floating_ips(ctx, {})
    port_ids = [str(f.port_id) for f in fips if f.port_id]
    devices = {str(p.id): p.device_id for p in port_services.list_ports(ctx, {"id": port_ids})} \
        if port_ids else {}
    names = {str(i.uuid): i.display_name for i in _instances(ctx)}
    pools = {str(n.id): n.name for n in network_services.visible_networks(ctx).filter(
        external=True)}
    rows = []
    for fip in fips:
        device = devices.get(str(fip.port_id), "") if fip.port_id else ""
        rows.append({
            "fip": fip, "pool": pools.get(str(fip.floating_network_id), fip.floating_network_id),
            "instance_id": device if device in names else "",
            "instance": names.get(device, ""),
        })
    return render(request, "dashboard/floating_ips.html", {
        "rows": rows, "form": form or AllocateForm(ctx),
    }, status=status)


@require_GET
@dashboard_view(READ)
def fip_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _list(request, ctx)


@require_POST
@dashboard_view(WRITE)
def fip_allocate(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = AllocateForm(ctx, request.POST)
    if form.is_valid():
        try:
            fip = fip_services.create_floating_ip(ctx, {
                "floating_network_id": form.cleaned_data["pool"],
                "description": form.cleaned_data.get("description") or ""})
        except (errors.BadRequest, errors.Conflict, errors.NotFound, errors.OverLimit) as exc:
            attach(form, exc, None)
        else:
            messages.success(request, f"Floating IP {fip.floating_ip_address} allocated.")
            return redirect("/floating-ips/")
    return _list(request, ctx, form, status=400)


def _instance_choices(ctx: RequestContext) -> list[tuple[str, str]]:
    return [(str(i.uuid), i.display_name) for i in _instances(ctx)]


def first_port(ctx: RequestContext, instance_id: str):
    """The instance's first port (the one it booted with), or None."""
    found = port_services.list_ports(ctx, {"device_id": [instance_id]})
    return found[0] if found else None


def _associate_page(request: HttpRequest, fip: FloatingIp, form: AssociateForm,
                    status: int = 200) -> HttpResponse:
    return render(request, "dashboard/floating_ip_associate.html",
                  {"fip": fip, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def fip_associate(request: HttpRequest, ctx: RequestContext, fip_id: str) -> HttpResponse:
    fip = fip_services.get_floating_ip(ctx, fip_id)
    form = AssociateForm(_instance_choices(ctx), request.POST or None)
    if request.method == "POST" and form.is_valid():
        port = first_port(ctx, form.cleaned_data["instance"])
        if port is None:
            form.add_error("instance", "This instance has no port to map the address to.")
        else:
            try:
                fip_services.update_floating_ip(ctx, str(fip.id), {"port_id": str(port.id)})
            except (errors.BadRequest, errors.Conflict, errors.NotFound) as exc:
                attach(form, exc, "instance")
            else:
                messages.success(request, f"Floating IP {fip.floating_ip_address} associated.")
                return redirect("/floating-ips/")
    return _associate_page(request, fip, form, status=400 if form.errors else 200)


@require_POST
@dashboard_view(WRITE)
def fip_disassociate(request: HttpRequest, ctx: RequestContext, fip_id: str) -> HttpResponse:
    fip = fip_services.get_floating_ip(ctx, fip_id)
    fip_services.update_floating_ip(ctx, str(fip.id), {"port_id": None})
    messages.success(request, f"Floating IP {fip.floating_ip_address} disassociated.")
    return redirect("/floating-ips/")


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def fip_release(request: HttpRequest, ctx: RequestContext, fip_id: str) -> HttpResponse:
    fip = fip_services.get_floating_ip(ctx, fip_id)
    if request.method == "POST":
        fip_services.delete_floating_ip(ctx, str(fip.id))
        messages.success(request, f"Floating IP {fip.floating_ip_address} released.")
        return redirect("/floating-ips/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Release floating IP {fip.floating_ip_address}?",
        "question": "The address goes back to the pool; whatever it maps to loses it.",
        "button": "Release",
        "cancel": "/floating-ips/",
    })
