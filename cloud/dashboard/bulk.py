"""Bulk actions on the instances table: one operation on the selected rows, each row through the
same service call its own button makes, each row's outcome reported on its own.

GET asks for confirmation, naming every selected instance and whether its state allows the
operation now; POST carries it out row by row. A row the service refuses (409: its state, its
lock, its silent host) does not stop the others; the answer lists what happened to each.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from cloud import errors
from cloud.compute import guest_kinds, servers
from cloud.compute.models import Instance
from cloud.compute.operations import Operation
from cloud.identity.context import RequestContext

from . import buttons
from .context import authorize, dashboard_view

MAX_SELECTED = 100  # one table page at most


@dataclass(frozen=True)
class Outcome:
    """What happened to one selected row."""

    instance_id: str
    name: str
    result: str  # "done", "refused" or "missing"
    message: str


def _operation(ctx: RequestContext, name: str) -> Operation:
    for op in buttons.bulk_operations(ctx):
        if op.name == name:
            return op
    if name in buttons.MENU:
        # It exists but asks for fields, or this role may not: the same answer as its button.
        op = buttons.MENU[name]
        if op.rule is not None:
            authorize(ctx, op.rule)
        raise errors.BadRequest(f"{op.button.label if op.button else name} needs a form of its "
                                "own; use the instance's menu.")
    raise errors.NotFound(f"There is no instance action named {name}.")


def _selected(request: HttpRequest) -> list[str]:
    data = request.POST if request.method == "POST" else request.GET
    ids = list(dict.fromkeys(i for i in data.getlist("ids") if i))
    if not ids:
        raise errors.BadRequest("Select at least one instance first.")
    if len(ids) > MAX_SELECTED:
        raise errors.BadRequest(f"Select at most {MAX_SELECTED} instances at a time.")
    return ids


def _find(ctx: RequestContext, instance_id: str) -> Instance | None:
    try:
        return servers.get_server(ctx, instance_id)
    except errors.NotFound:
        return None


def _carry_out(ctx: RequestContext, operation: Operation, instance_id: str) -> Outcome:
    instance = _find(ctx, instance_id)
    if instance is None:
        return Outcome(instance_id, instance_id, "missing", "not found: deleted meanwhile?")
    try:
        buttons.perform(ctx, instance, operation, {})
    except errors.KumoError as exc:
        return Outcome(instance_id, instance.display_name, "refused", exc.message)
    assert operation.button is not None
    return Outcome(instance_id, instance.display_name, "done",
                   operation.button.done.format(name=instance.display_name))


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return "/instances/"


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:servers:index")
def bulk_action(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    data = request.POST if request.method == "POST" else request.GET
    operation = _operation(ctx, data.get("action", ""))
    assert operation.rule is not None and operation.button is not None
    authorize(ctx, operation.rule)
    ids = _selected(request)
    dialog = bool(request.headers.get("HX-Request"))
    if request.method == "POST":
        outcomes = [_carry_out(ctx, operation, instance_id) for instance_id in ids]
        return render(
            request,
            "dashboard/fragments/bulk_done.html" if dialog else "dashboard/bulk_done.html",
            {"action": operation, "outcomes": outcomes, "next": _back(request),
             "refused": sum(o.result != "done" for o in outcomes)},
        )
    found = [(i, instance) for i in ids if (instance := _find(ctx, i)) is not None]
    containers = guest_kinds.containers(instance for _, instance in found)
    rows = [
        (instance, operation in buttons.offered(
            ctx, instance, container=str(instance.uuid) in containers))
        for _, instance in found
    ]
    return render(
        request,
        "dashboard/fragments/bulk_confirm.html" if dialog else "dashboard/bulk_confirm.html",
        {"action": operation, "rows": rows, "missing": len(ids) - len(found),
         "question": operation.button.question.format(name="each selected instance"),
         "next": _back(request), "dialog": dialog},
    )
