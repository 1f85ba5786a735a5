"""Instances: the table, one instance's tabs (overview, log, action log, console), and actions.

Actions are two steps, both server-side: GET shows the confirmation (a page, or a dialog when
htmx loads it), POST does it through the same service function as the API and redirects back.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods

from cloud import errors
from cloud.compute import action_records, consoles, guest_operations, screens, servers, states
from cloud.compute.models import Instance, InstanceActionEvent
from cloud.compute.operations import Operation
from cloud.identity import policy
from cloud.identity.context import RequestContext
from consoles import views as console_views

from . import action_forms, buttons, faults, networks, placement_check, request_timeline, tables
from . import volumes as volume_panel
from .context import authorize, dashboard_view

CONSOLE_RULE = "compute:servers:remote_consoles"
LOG_LINES = 200
# How often a container's console tab asks its host for the console again.
TEXT_CONSOLE_REFRESH_SECONDS = 5


@require_GET
@dashboard_view("compute:servers:index")
def instance_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    page = tables.instance_page(ctx, tables.parse_query(request.GET))
    template = "dashboard/instances.html"
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "instance-table":
        template = "dashboard/fragments/instance_table.html"
    return render(request, template, {"page": page, "statuses": tables.STATUSES})


@require_GET
@dashboard_view("compute:servers:index")
def instance_row(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    """One row of the table, for a page that was told its instance changed."""
    row = tables.row_for(ctx, instance_id)
    if row is None or row.instance.deleted:
        raise errors.NotFound(f"Instance {instance_id} could not be found.")
    return render(request, "dashboard/fragments/instance_row.html", {"row": row})


def _instance(ctx: RequestContext, instance_id: str) -> Instance:
    return servers.get_server(ctx, instance_id)


def _detail_context(ctx: RequestContext, instance: Instance, tab: str) -> dict:
    row = tables.decorate(ctx, [instance])[0]
    fault = None
    if instance.vm_state == states.ERROR:
        fault = instance.faults.order_by("-created_at", "-id").first()
    return {
        "row": row,
        "instance": instance,
        "tab": tab,
        "fault": faults.explain(fault, is_admin=ctx.is_admin) if fault else None,
        "placement_check_url": (placement_check.url_for(instance) if fault is not None
                                and policy.allowed(ctx, placement_check.RULE) else None),
        "flavor": instance.flavor_snapshot or {},
        "can_console": policy.allowed(ctx, CONSOLE_RULE),
    }


@require_GET
@dashboard_view("compute:servers:show")
def instance_detail(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    instance = _instance(ctx, instance_id)
    ports = networks.instance_ports(ctx, str(instance.uuid))
    groups = {str(g.id): g for p in ports for g in p["groups"]}
    return render(request, "dashboard/instance_overview.html", {
        **_detail_context(ctx, instance, "overview"),
        "ports": ports, "security_groups": list(groups.values()),
        "volumes": volume_panel.instance_volumes(ctx, str(instance.uuid)),
    })


@require_GET
@dashboard_view("compute:servers:show")
def instance_summary(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    """The instance page's header (status, actions, fault), reloaded when the instance changes."""
    instance = _instance(ctx, instance_id)
    return render(request, "dashboard/fragments/instance_summary.html",
                  _detail_context(ctx, instance, request.GET.get("tab", "overview")))


@require_GET
@dashboard_view("compute:servers:show")
def instance_log(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    instance = _instance(ctx, instance_id)
    return render(request, "dashboard/instance_log.html", {
        **_detail_context(ctx, instance, "log"),
        "can_read_log": policy.allowed(ctx, "compute:servers:console_output"),
        "lines": LOG_LINES,
    })


@require_GET
@dashboard_view("compute:servers:console_output")
def instance_log_output(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    """The console output itself: it waits for the host, so the log tab loads it separately."""
    instance = _instance(ctx, instance_id)
    try:
        output, problem = guest_operations.console_output(ctx, instance, LOG_LINES), ""
    except errors.Conflict as exc:
        output, problem = "", exc.message
    return render(request, "dashboard/fragments/console_output.html",
                  {"output": output, "problem": problem})


@require_GET
@dashboard_view("compute:instance_actions:index")
def instance_history(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    instance = _instance(ctx, instance_id)
    history = action_records.list_actions(instance, limit=100)
    show_events = policy.allowed(ctx, "compute:instance_actions:events")
    events: dict[int, list[InstanceActionEvent]] = {}
    if show_events and history:
        for event in InstanceActionEvent.objects.filter(action__in=history).order_by(
            "start_time", "id"
        ):
            events.setdefault(event.action_id, []).append(event)
    return render(request, "dashboard/instance_history.html", {
        **_detail_context(ctx, instance, "history"),
        "history": [(a, events.get(a.pk, [])) for a in history],
        "show_events": show_events,
    })


@require_GET
@dashboard_view("compute:instance_actions:show")
def instance_request(
    request: HttpRequest, ctx: RequestContext, instance_id: str, request_id: str
) -> HttpResponse:
    """One request's timeline across the processes that worked on it (request_timeline.py)."""
    instance = _instance(ctx, instance_id)
    with_events = policy.allowed(ctx, "compute:instance_actions:events")
    return render(request, "dashboard/instance_request.html", {
        **_detail_context(ctx, instance, "history"),
        "timeline": request_timeline.request_timeline(instance, request_id,
                                                      with_events=with_events),
        "show_events": with_events,
    })


def _console_base(request: HttpRequest) -> str:
    if settings.KUMO_PUBLIC_URL:
        return settings.KUMO_PUBLIC_URL.rstrip("/")
    return f"{request.scheme}://{request.get_host()}"


@require_GET
@dashboard_view("compute:servers:show")
def instance_console(request: HttpRequest, ctx: RequestContext, instance_id: str) -> HttpResponse:
    """The console tab. The one-time link is minted here, as the API's remote-consoles does, and
    the console page is framed from our own origin (see console_frame)."""
    instance = _instance(ctx, instance_id)
    context = _detail_context(ctx, instance, "console")
    if context["row"].container:
        return _container_console(request, ctx, context)
    frame_url, problem = "", ""
    if not policy.allowed(ctx, CONSOLE_RULE):
        problem = "Your role in this project does not include opening consoles."
    elif (no_screen := screens.screen_problem(instance)) is not None:
        problem = no_screen  # no link: the console page could only say it cannot connect
    else:
        try:
            url = consoles.create_console(
                ctx, instance, consoles.PROTOCOL_VNC, consoles.TYPE_NOVNC, _console_base(request)
            )
        except errors.KumoError as exc:
            problem = exc.message
        else:
            token = url.split("token=", 1)[1]
            # A standalone proxy serves its own page; ours is framed through console_frame.
            frame_url = url if settings.KUMO_CONSOLE_BASE_URL else f"/console-frame/?token={token}"
    response = render(request, "dashboard/instance_console.html", {
        **context,
        "frame_url": frame_url,
        "problem": problem,
    })
    response["Cache-Control"] = "no-store"
    return response


def _container_console(request: HttpRequest, ctx: RequestContext, context: dict) -> HttpResponse:
    """A container has no screen (no VNC): its console tab is its text console, the console log
    the API's os-getConsoleOutput returns (instance_log_output), asked again every few seconds."""
    return render(request, "dashboard/instance_console.html", {
        **context,
        "text_console": True,
        "can_read_log": policy.allowed(ctx, "compute:servers:console_output"),
        "lines": LOG_LINES,
        "refresh_seconds": TEXT_CONSOLE_REFRESH_SECONDS,
    })


@require_GET
@xframe_options_sameorigin
def console_frame(request: HttpRequest) -> HttpResponse:
    """The console page (consoles/), allowed in a frame of this origin only. The web-wide
    X-Frame-Options is DENY, which would blank the dashboard's console tab. The token alone
    decides, exactly as on /console/."""
    response = HttpResponse(console_views.render_page(request.GET.get("token")))
    for name, value in console_views.PRIVATE_HEADERS.items():
        response[name] = value
    return response


# --- actions


def _back(request: HttpRequest, instance: Instance) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return f"/instances/{instance.uuid}/"


def _action_form(ctx: RequestContext, instance: Instance, action: Operation, data=None):
    form = action_forms.action_form(action)
    return form.build(ctx, instance, data) if form else None


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:servers:show")
def instance_action(
    request: HttpRequest, ctx: RequestContext, instance_id: str, name: str
) -> HttpResponse:
    action = buttons.MENU.get(name)
    if action is None or action.rule is None or action.button is None:
        raise errors.NotFound(f"There is no instance action named {name}.")
    button = action.button
    instance = _instance(ctx, instance_id)
    authorize(ctx, action.rule)
    form = _action_form(ctx, instance, action, request.POST if request.method == "POST" else None)
    problem = ""
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            buttons.perform(ctx, instance, action, form.cleaned_data if form else {})
        except errors.Forbidden:
            raise
        except errors.KumoError as exc:
            problem = exc.message  # 409 / 400: shown on the confirmation, with the reason
        else:
            messages.success(request, button.done.format(name=instance.display_name))
            target = _back(request, instance)
            if action.name == "delete" and target.startswith(f"/instances/{instance.uuid}"):
                target = "/instances/"  # its own page is about to be gone
            return redirect(target)
    template = "dashboard/fragments/confirm.html" if request.headers.get("HX-Request") else (
        "dashboard/confirm.html"
    )
    status = 409 if problem else (400 if form is not None and form.errors else 200)
    return render(request, template, {
        "action": action,
        "instance": instance,
        "question": button.question.format(name=instance.display_name),
        "form": form,
        "problem": problem,
        "next": _back(request, instance),
    }, status=status)
