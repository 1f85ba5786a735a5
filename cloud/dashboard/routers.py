"""Routers panel: the project's routers with their external gateway, a router's page with its
interfaces, and creating, deleting, (un)setting the gateway and adding or removing interfaces —
all through cloud/network/routers.py, whose refusals (an overlapping subnet, a router still in
use) are shown as messages or on the form."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.network import networks as network_services
from cloud.network import routers as router_services
from cloud.network import subnets as subnet_services
from cloud.network.models import Router

from .context import dashboard_view
from .forms import attach
from .network_forms import GatewayForm, InterfaceForm, RouterForm
from .networks import READ, WRITE


def _gateway(router: Router, names: dict[str, str]) -> dict | None:
    info = router_services.gateway_info(router)
    if info is None:
        return None
    return {
        "network_id": info["network_id"],
        "network": names.get(info["network_id"], info["network_id"]),
        "addresses": [e.get("ip_address") for e in info["external_fixed_ips"]],
        "snat": info["enable_snat"],
    }


def _network_names(ctx: RequestContext) -> dict[str, str]:
    return {str(n.id): n.name or str(n.id) for n in network_services.visible_networks(ctx)}


def _list(request: HttpRequest, ctx: RequestContext, form: RouterForm | None = None,
          status: int = 200) -> HttpResponse:
    names = _network_names(ctx)
    rows = [(r, _gateway(r, names)) for r in router_services.list_routers(ctx, {})]
    return render(request, "dashboard/routers.html", {
        "rows": rows, "form": form or RouterForm(ctx),
    }, status=status)


@require_GET
@dashboard_view(READ)
def router_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _list(request, ctx)


@require_POST
@dashboard_view(WRITE)
def router_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = RouterForm(ctx, request.POST)
    if form.is_valid():
        try:
            router = router_services.create_router(ctx, form.body())
        except (errors.BadRequest, errors.Conflict, errors.NotFound, errors.OverLimit) as exc:
            attach(form, exc)
        else:
            messages.success(request, f"Router {router.name} created.")
            return redirect(f"/routers/{router.id}/")
    return _list(request, ctx, form, status=400)


def _subnet_choices(ctx: RequestContext, router: Router) -> list[tuple[str, str]]:
    """Subnets the router could get an interface on: the project's (or shared) subnets of
    networks that are not external and not already on the router."""
    attached = {s.id for s in router_services.attached_subnets(router)}
    found = subnet_services.list_subnets(ctx, {})
    return [
        (str(s.id), f"{s.network.name or s.network_id}: {s.name or s.cidr} ({s.cidr})")
        for s in found if s.id not in attached and not s.network.external
    ]


def _detail(request: HttpRequest, ctx: RequestContext, router: Router, *,
            interface_form: InterfaceForm | None = None,
            gateway_form: GatewayForm | None = None, status: int = 200) -> HttpResponse:
    names = _network_names(ctx)
    subnets = {str(s.id): s for s in router_services.attached_subnets(router)}
    interfaces = []
    for port in router_services.interfaces(router).order_by("created_at"):
        for entry in port.fixed_ips or []:
            subnet = subnets.get(entry.get("subnet_id", ""))
            interfaces.append({
                "port": port, "ip": entry.get("ip_address"),
                "subnet": subnet, "network": names.get(str(port.network_id), port.network_id),
            })
    return render(request, "dashboard/router_detail.html", {
        "router": router,
        "gateway": _gateway(router, names),
        "interfaces": interfaces,
        "interface_form": interface_form or InterfaceForm(_subnet_choices(ctx, router)),
        "gateway_form": gateway_form or GatewayForm(ctx),
    }, status=status)


@require_GET
@dashboard_view(READ)
def router_detail(request: HttpRequest, ctx: RequestContext, router_id: str) -> HttpResponse:
    return _detail(request, ctx, router_services.get_router(ctx, router_id))


@require_POST
@dashboard_view(WRITE)
def interface_add(request: HttpRequest, ctx: RequestContext, router_id: str) -> HttpResponse:
    router = router_services.get_router(ctx, router_id)
    form = InterfaceForm(_subnet_choices(ctx, router), request.POST)
    if form.is_valid():
        try:
            router_services.add_interface(ctx, str(router.id),
                                          {"subnet_id": form.cleaned_data["subnet"]})
        except (errors.BadRequest, errors.Conflict, errors.NotFound, errors.OverLimit) as exc:
            attach(form, exc, "subnet")
        else:
            messages.success(request, "Interface added.")
            return redirect(f"/routers/{router.id}/")
    return _detail(request, ctx, router, interface_form=form, status=400)


@require_POST
@dashboard_view(WRITE)
def interface_remove(request: HttpRequest, ctx: RequestContext, router_id: str,
                     port_id: str) -> HttpResponse:
    router = router_services.get_router(ctx, router_id)
    try:
        router_services.remove_interface(ctx, str(router.id), {"port_id": port_id})
    except (errors.Conflict, errors.BadRequest) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Interface removed.")
    return redirect(f"/routers/{router.id}/")


@require_POST
@dashboard_view(WRITE)
def gateway_set(request: HttpRequest, ctx: RequestContext, router_id: str) -> HttpResponse:
    router = router_services.get_router(ctx, router_id)
    form = GatewayForm(ctx, request.POST)
    if form.is_valid():
        try:
            router_services.update_router(ctx, str(router.id), {"external_gateway_info": {
                "network_id": form.cleaned_data["external_network"]}})
        except (errors.BadRequest, errors.Conflict, errors.NotFound) as exc:
            attach(form, exc, "external_network")
        else:
            messages.success(request, "Gateway set.")
            return redirect(f"/routers/{router.id}/")
    return _detail(request, ctx, router, gateway_form=form, status=400)


@require_POST
@dashboard_view(WRITE)
def gateway_clear(request: HttpRequest, ctx: RequestContext, router_id: str) -> HttpResponse:
    router = router_services.get_router(ctx, router_id)
    try:
        router_services.update_router(ctx, str(router.id), {"external_gateway_info": {}})
    except (errors.BadRequest, errors.Conflict) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Gateway cleared.")
    return redirect(f"/routers/{router.id}/")


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def router_delete(request: HttpRequest, ctx: RequestContext, router_id: str) -> HttpResponse:
    router = router_services.get_router(ctx, router_id)
    label = router.name or str(router.id)
    if request.method == "POST":
        try:
            router_services.delete_router(ctx, str(router.id))
        except errors.Conflict as exc:
            messages.error(request, exc.message)
            return redirect(f"/routers/{router.id}/")
        messages.success(request, f"Router {label} deleted.")
        return redirect("/routers/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete router {label}?",
        "question": "A router with interfaces or floating IPs mapped through it cannot be "
                    "deleted: remove them first.",
        "button": "Delete router",
        "cancel": f"/routers/{router.id}/",
    })
