"""Security groups panel: the project's groups, creating and deleting them, and a group's page
with its rules editor (add a rule: direction, ether type, protocol, port range, remote CIDR or
remote group; delete a rule), through cloud/network/security_groups.py. The service judges each
rule (a port range that does not suit the protocol, a duplicate) and its reason is shown on the
form."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cloud import errors
from cloud.identity.context import RequestContext
from cloud.network import security_groups as group_services
from cloud.network.models import SecurityGroup, SecurityGroupRule

from .context import dashboard_view
from .forms import attach
from .network_forms import RuleForm, SecurityGroupForm
from .networks import READ, WRITE

# Which rule field a refusal is about, by a word of its message.
_RULE_FIELD_BY_WORD = [("ethertype", "ethertype"), ("protocol", "protocol"),
                       ("icmp code", "port_range_max"), ("port", "port_range_min"),
                       ("cidr", "remote_ip_prefix"), ("remote_ip_prefix", "remote_ip_prefix")]


def _rule_field(exc: errors.KumoError) -> str | None:
    message = exc.message.lower()
    if isinstance(exc, errors.Conflict):
        return None
    for word, field in _RULE_FIELD_BY_WORD:
        if word in message:
            return field
    return None


def describe_ports(rule: SecurityGroupRule) -> str:
    if rule.port_range_min is None and rule.port_range_max is None:
        return "any"
    if rule.protocol in ("icmp", "1", "icmpv6", "ipv6-icmp", "58"):
        code = "any" if rule.port_range_max is None else rule.port_range_max
        return f"type {rule.port_range_min}, code {code}"
    if rule.port_range_min == rule.port_range_max:
        return str(rule.port_range_min)
    return f"{rule.port_range_min}–{rule.port_range_max}"


def _list(request: HttpRequest, ctx: RequestContext, form: SecurityGroupForm | None = None,
          status: int = 200) -> HttpResponse:
    return render(request, "dashboard/security_groups.html", {
        "groups": group_services.list_groups(ctx, {}),
        "form": form or SecurityGroupForm(),
    }, status=status)


@require_GET
@dashboard_view(READ)
def group_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    return _list(request, ctx)


@require_POST
@dashboard_view(WRITE)
def group_create(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = SecurityGroupForm(request.POST)
    if form.is_valid():
        try:
            group = group_services.create_group(ctx, {
                "name": form.cleaned_data["name"],
                "description": form.cleaned_data.get("description") or ""})
        except (errors.BadRequest, errors.Conflict, errors.OverLimit) as exc:
            attach(form, exc, "name")
        else:
            messages.success(request, f"Security group {group.name} created.")
            return redirect(f"/security-groups/{group.id}/")
    return _list(request, ctx, form, status=400)


def _group_choices(ctx: RequestContext) -> list[tuple[str, str]]:
    return [(str(g.id), g.name or str(g.id)) for g in group_services.list_groups(ctx, {})]


def _detail(request: HttpRequest, ctx: RequestContext, group: SecurityGroup,
            form: RuleForm | None = None, status: int = 200) -> HttpResponse:
    rules = list(group.rules.select_related("remote_group").order_by("direction", "created_at"))
    return render(request, "dashboard/security_group_detail.html", {
        "group": group,
        "rules": [(r, describe_ports(r)) for r in rules],
        "form": form or RuleForm(_group_choices(ctx)),
    }, status=status)


@require_GET
@dashboard_view(READ)
def group_detail(request: HttpRequest, ctx: RequestContext, group_id: str) -> HttpResponse:
    return _detail(request, ctx, group_services.get_group(ctx, group_id))


@require_POST
@dashboard_view(WRITE)
def rule_create(request: HttpRequest, ctx: RequestContext, group_id: str) -> HttpResponse:
    group = group_services.get_group(ctx, group_id)
    form = RuleForm(_group_choices(ctx), request.POST)
    if form.is_valid():
        try:
            group_services.create_rule(ctx, form.body(str(group.id)))
        except (errors.BadRequest, errors.Conflict, errors.NotFound, errors.OverLimit) as exc:
            attach(form, exc, _rule_field(exc))
        else:
            messages.success(request, "Rule added.")
            return redirect(f"/security-groups/{group.id}/")
    return _detail(request, ctx, group, form, status=400)


@require_POST
@dashboard_view(WRITE)
def rule_delete(request: HttpRequest, ctx: RequestContext, group_id: str,
                rule_id: str) -> HttpResponse:
    group = group_services.get_group(ctx, group_id)
    rule = group_services.get_rule(ctx, rule_id)
    if rule.security_group_id != group.id:
        raise errors.NotFound(f"Security group rule {rule_id} could not be found.")
    group_services.delete_rule(ctx, str(rule.id))
    messages.success(request, "Rule deleted.")
    return redirect(f"/security-groups/{group.id}/")


@require_http_methods(["GET", "POST"])
@dashboard_view(WRITE)
def group_delete(request: HttpRequest, ctx: RequestContext, group_id: str) -> HttpResponse:
    group = group_services.get_group(ctx, group_id)
    label = group.name or str(group.id)
    if request.method == "POST":
        try:
            group_services.delete_group(ctx, str(group.id))
        except errors.Conflict as exc:
            messages.error(request, exc.message)
            return redirect(f"/security-groups/{group.id}/")
        messages.success(request, f"Security group {label} deleted.")
        return redirect("/security-groups/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete security group {label}?",
        "question": "A group that ports still use cannot be deleted; rules of other groups that "
                    "name it as their remote group go with it.",
        "button": "Delete security group",
        "cancel": f"/security-groups/{group.id}/",
    })
