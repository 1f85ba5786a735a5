"""Operator pages, compute side: hypervisors, compute services, aggregates and availability zones,
and every project's instances (flavors: admin_flavors.py). Each page needs the admin rule of the API call
behind it, so a non-admin gets 403 exactly where the API would answer it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.compute import aggregates, availability_zones, hosts
from cloud.compute.models import COMPUTE_BINARY
from cloud.identity import policy
from cloud.identity.context import RequestContext

from . import drains, host_failures, tables
from .context import authorize, dashboard_view
from .forms import AggregateForm, AggregateHostForm, ServiceForm, attach


@require_GET
@dashboard_view("compute:hypervisors")
def admin_index(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return redirect("/manage/hypervisors/")


@require_GET
@dashboard_view("compute:hypervisors")
def hypervisor_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    nodes = []
    for node in hosts.list_nodes():
        nodes.append({
            "node": node,
            "enabled": not node.service.disabled,
            # Capacity as the scheduler sees it: physical size × allocation ratio.
            "vcpus_cap": int(node.vcpus * node.cpu_allocation_ratio),
            "ram_cap": int(node.memory_mb * node.ram_allocation_ratio),
            "disk_cap": int(node.local_gb * node.disk_allocation_ratio),
        })
    running = drains.running_by_host()
    states = host_failures.states_by_host(entry["node"].service for entry in nodes)
    for entry in nodes:
        entry["drain"] = running.get(entry["node"].host)
        entry["state"] = states[entry["node"].host]
    return render(request, "dashboard/admin/hypervisors.html", {
        "nodes": nodes, "totals": hosts.statistics(),
        "can_drain": policy.allowed(ctx, "compute:host_drains:create"),
        "can_add_host": policy.allowed(ctx, "compute:host_tokens:create"),
        "recent_drains": drains.recent() if policy.allowed(ctx, "compute:host_drains:index") else [],
        "can_confirm": policy.allowed(ctx, host_failures.CONFIRM_RULE),
    })


@require_GET
@dashboard_view("compute:services")
def service_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    services = list(hosts.list_services())
    zones = availability_zones.host_zones()
    return render(request, "dashboard/admin/services.html", {
        "services": [(s, availability_zones.zone_of(s.host, zones)) for s in services],
    })


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:services")
def service_edit(request: HttpRequest, ctx: RequestContext, service_id: str) -> HttpResponse:
    service = hosts.find_service(service_id)
    initial = {"status": "disabled" if service.disabled else "enabled",
               "disabled_reason": service.disabled_reason or "", "forced_down": service.forced_down}
    form = ServiceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        hosts.update_service(service, status=data["status"],
                             disabled_reason=data["disabled_reason"] or None,
                             forced_down=data["forced_down"])
        messages.success(request, f"Service {service.binary} on {service.host} updated.")
        return redirect("/manage/services/")
    return render(request, "dashboard/admin/service_edit.html",
                  {"service": service, "form": form}, status=400 if form.errors else 200)


def _compute_hosts() -> list[str]:
    return sorted(hosts.list_services(binary=COMPUTE_BINARY)
                  .values_list("host", flat=True))


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:aggregates:index")
def aggregate_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = AggregateForm(request.POST or None)
    if request.method == "POST":
        authorize(ctx, "compute:aggregates:create")
        if form.is_valid():
            try:
                aggregate = aggregates.create_aggregate(
                    form.cleaned_data["name"], form.cleaned_data["availability_zone"] or None
                )
            except (errors.Conflict, errors.BadRequest) as exc:
                attach(form, exc)
            else:
                messages.success(request, f"Aggregate {aggregate.name} created.")
                return redirect("/manage/aggregates/")
    compute_hosts = _compute_hosts()
    return render(request, "dashboard/admin/aggregates.html", {
        "aggregates": [
            (a, AggregateHostForm(compute_hosts, prefix=f"agg{a.pk}"))
            for a in aggregates.list_aggregates()
        ],
        "zones": availability_zones.list_zones(include_internal=True),
        "form": form,
    }, status=400 if form.errors else 200)


@require_POST
@dashboard_view("compute:aggregates:add_host")
def aggregate_add_host(request: HttpRequest, ctx: RequestContext, aggregate_id: str) -> HttpResponse:
    aggregate = aggregates.get_aggregate(aggregate_id)
    form = AggregateHostForm(_compute_hosts(), request.POST, prefix=f"agg{aggregate.pk}")
    if form.is_valid():
        try:
            aggregates.add_host(aggregate, form.cleaned_data["host"])
        except (errors.Conflict, errors.NotFound) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{form.cleaned_data['host']} added to {aggregate.name}.")
    return redirect("/manage/aggregates/")


@require_POST
@dashboard_view("compute:aggregates:remove_host")
def aggregate_remove_host(
    request: HttpRequest, ctx: RequestContext, aggregate_id: str, host: str
) -> HttpResponse:
    aggregate = aggregates.get_aggregate(aggregate_id)
    aggregates.remove_host(aggregate, host)
    messages.success(request, f"{host} removed from {aggregate.name}.")
    return redirect("/manage/aggregates/")


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:aggregates:delete")
def aggregate_delete(request: HttpRequest, ctx: RequestContext, aggregate_id: str) -> HttpResponse:
    aggregate = aggregates.get_aggregate(aggregate_id)
    if request.method == "POST":
        try:
            aggregates.delete_aggregate(aggregate)
        except errors.BadRequest as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Aggregate {aggregate.name} deleted.")
        return redirect("/manage/aggregates/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete aggregate {aggregate.name}?",
        "question": "It must hold no hosts any more.",
        "button": "Delete aggregate", "cancel": "/manage/aggregates/",
    })


@require_GET
@dashboard_view("compute:servers:all_tenants")
def all_instances(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    page = tables.instance_page(
        ctx, tables.parse_query(request.GET, allow_host=True), all_projects=True
    )
    template = "dashboard/admin/instances.html"
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "instance-table":
        template = "dashboard/fragments/instance_table.html"
    return render(request, template, {
        "page": page, "statuses": tables.STATUSES, "all_projects": True,
    })
