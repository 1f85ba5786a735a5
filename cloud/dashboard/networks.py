"""Networks panel: the networks this project sees (its own, shared and external ones), a network's
page with its subnets and ports, and creating and deleting networks and subnets — all through the
Network API's service functions (cloud/network/), so the dashboard refuses exactly what the API
refuses: a network still in use answers 409, and its reason is shown as a message."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.network import common
from cloud.network import floating_ips as fip_services
from cloud.network import networks as network_services
from cloud.network import ports as port_services
from cloud.network import subnets as subnet_services
from cloud.network.models import Network

from .context import dashboard_view
from .forms import attach
from .network_forms import NetworkForm, SubnetForm

READ = "network:get"
WRITE = "network:write"

# Which field of the network form a refusal of the subnet is about, by a word of its message.
_SUBNET_FIELD_BY_WORD = [("gateway", "gateway_ip"), ("dns", "dns_nameservers"),
                         ("nameserver", "dns_nameservers"), ("cidr", "cidr")]


def subnet_field(exc: errors.KumoError) -> str | None:
    message = exc.message.lower()
    for word, field in _SUBNET_FIELD_BY_WORD:
        if word in message:
            return field
    return None


def status_of(network: Network) -> str:
    # Kumo's networks carry no status of their own: Neutron shows DOWN for one an admin disabled.
    return "ACTIVE" if network.admin_state_up else "DOWN"


def _list(request: HttpRequest, ctx: RequestContext, form: NetworkForm | None = None,
          status: int = 200) -> HttpResponse:
    rows = [
        {"network": n, "subnets": list(n.subnets.all()), "status": status_of(n),
         "owned": common.owns(ctx, n.project_id)}
        for n in network_services.list_networks(ctx, {})
    ]
    return render(request, "dashboard/networks.html", {
        "rows": rows, "form": form or NetworkForm(ctx),
    }, status=status)


@require_GET
@dashboard_view(READ)
def network_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _list(request, ctx)


@require_POST
@dashboard_view(WRITE)
def network_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = NetworkForm(ctx, request.POST)
    if not form.is_valid():
        return _list(request, ctx, form, status=400)
    try:
        network = network_services.create_network(ctx, form.network_body())
    except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
        attach(form, exc)
        return _list(request, ctx, form, status=400)
    except errors.Forbidden as exc:
        attach(form, exc)
        return _list(request, ctx, form, status=403)
    if form.cleaned_data.get("with_subnet"):
        try:
            subnet_services.create_subnet(ctx, form.subnet_body(str(network.id)))
        except errors.KumoError as exc:
            # As Horizon does: a network whose first subnet was refused is not left behind.
            network_services.delete_network(ctx, str(network.id))
            attach(form, exc, subnet_field(exc))
            return _list(request, ctx, form, status=400)
    messages.success(request, f"Network {network.name} created.")
    return redirect(f"/networks/{network.id}/")


def _detail(request: HttpRequest, ctx: RequestContext, network: Network,
            form: SubnetForm | None = None, status: int = 200) -> HttpResponse:
    ports = port_services.list_ports(ctx, {"network_id": [str(network.id)]})
    subnet_names = {str(s.id): s.name or s.cidr for s in network.subnets.all()}
    return render(request, "dashboard/network_detail.html", {
        "network": network,
        "status": status_of(network),
        "owned": common.owns(ctx, network.project_id),
        "subnets": list(network.subnets.all()),
        "ports": [
            (p, [(subnet_names.get(e.get("subnet_id", ""), ""), e.get("ip_address"))
                 for e in p.fixed_ips or []])
            for p in ports
        ],
        "form": form or SubnetForm(initial={"enable_dhcp": True}),
    }, status=status)


@require_GET
@dashboard_view(READ)
def network_detail(request: HttpRequest, ctx: RequestContext, network_id: str) -> HttpResponse:
    return _detail(request, ctx, network_services.get_network(ctx, network_id))


@require_POST
@dashboard_view(WRITE)
def subnet_create(request: HttpRequest, ctx: RequestContext, network_id: str) -> HttpResponse:
    network = network_services.get_network(ctx, network_id)
    form = SubnetForm(request.POST)
    if form.is_valid():
        try:
            subnet = subnet_services.create_subnet(ctx, form.subnet_body(str(network.id)))
        except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
            attach(form, exc, subnet_field(exc))
        else:
            messages.success(request, f"Subnet {subnet.name or subnet.cidr} created.")
            return redirect(f"/networks/{network.id}/")
    return _detail(request, ctx, network, form, status=400)


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def subnet_delete(request: HttpRequest, ctx: RequestContext, subnet_id: str) -> HttpResponse:
    subnet = subnet_services.get_subnet(ctx, subnet_id)
    back = f"/networks/{subnet.network_id}/"
    label = subnet.name or subnet.cidr
    if request.method == "POST":
        try:
            subnet_services.delete_subnet(ctx, str(subnet.id))
        except errors.Conflict as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Subnet {label} deleted.")
        return redirect(back)
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete subnet {label}?",
        "question": "A subnet that still gives an address to an instance or router cannot go.",
        "button": "Delete subnet",
        "cancel": back,
    })


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def network_delete(request: HttpRequest, ctx: RequestContext, network_id: str) -> HttpResponse:
    network = network_services.get_network(ctx, network_id)
    label = network.name or str(network.id)
    if request.method == "POST":
        try:
            network_services.delete_network(ctx, str(network.id))
        except errors.Conflict as exc:
            messages.error(request, exc.message)
            return redirect(f"/networks/{network.id}/")
        messages.success(request, f"Network {label} deleted.")
        return redirect("/networks/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete network {label}?",
        "question": "Its subnets go with it. A network that instances or routers still use "
                    "cannot be deleted.",
        "button": "Delete network",
        "cancel": f"/networks/{network.id}/",
    })


def instance_ports(ctx: RequestContext, instance_id: str) -> list[dict]:
    """An instance's ports for its page: network, addresses, floating IPs mapped onto them and
    security groups. Empty for a user the network's read rule does not let see them."""
    try:
        ports = port_services.list_ports(ctx, {"device_id": [instance_id]})
        fips = fip_services.list_floating_ips(ctx, {"port_id": [str(p.id) for p in ports]}) \
            if ports else []
    except errors.Forbidden:
        return []
    names = {str(n.id): n.name or str(n.id) for n in
             network_services.visible_networks(ctx).filter(pk__in=[p.network_id for p in ports])}
    return [{
        "port": p,
        "network_id": str(p.network_id),
        "network": names.get(str(p.network_id), str(p.network_id)),
        "addresses": [e.get("ip_address") for e in p.fixed_ips or []],
        "floating": [f.floating_ip_address for f in fips if f.port_id == p.id],
        "groups": list(p.security_groups.all()),
    } for p in ports]
