"""Operator pages, identity side: projects, users and role assignments, through the services
behind the Keystone API, under the same admin rules."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cloud import errors
from cloud.identity import accounts as identity
from cloud.identity.context import RequestContext

from .context import authorize, dashboard_view
from .forms import GrantForm, ProjectForm, UserForm, attach


@require_http_methods(["GET", "POST"])
@dashboard_view("identity:projects:list")
def project_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST":
        authorize(ctx, "identity:projects:create")
        if form.is_valid():
            try:
                project = identity.create_project(**form.cleaned_data)
            except errors.Conflict as exc:
                attach(form, exc, "name")
            else:
                messages.success(request, f"Project {project.name} created.")
                return redirect("/manage/projects/")
    return render(request, "dashboard/admin/projects.html", {
        "projects": identity.list_projects(), "form": form,
    }, status=400 if form.errors else 200)


@require_POST
@dashboard_view("identity:projects:update")
def project_toggle(request: HttpRequest, ctx: RequestContext, project_id: str) -> HttpResponse:
    project = identity.get_project(project_id)
    try:
        identity.update_project(project.pk, enabled=not project.enabled)
    except errors.Forbidden as exc:
        messages.error(request, exc.message)
    else:
        word = "disabled" if project.enabled else "enabled"
        messages.success(request, f"Project {project.name} {word}.")
    return redirect("/manage/projects/")


@require_http_methods(["GET", "POST"])
@dashboard_view("identity:projects:delete")
def project_delete(request: HttpRequest, ctx: RequestContext, project_id: str) -> HttpResponse:
    project = identity.get_project(project_id)
    if request.method == "POST":
        try:
            identity.delete_project(project.pk)
        except (errors.Forbidden, errors.Conflict) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Project {project.name} deleted.")
        return redirect("/manage/projects/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete project {project.name}?",
        "question": "It must have no instances left. Its role assignments go with it.",
        "button": "Delete project", "cancel": "/manage/projects/",
    })


def _grant_form(data=None) -> GrantForm:
    return GrantForm(identity.list_users(), identity.list_projects(), identity.list_roles(), data,
                     prefix="grant")


@require_http_methods(["GET", "POST"])
@dashboard_view("identity:users:list")
def user_list(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = UserForm(request.POST or None, prefix="user")
    if request.method == "POST":
        authorize(ctx, "identity:users:create")
        if form.is_valid():
            try:
                user = identity.create_user(**form.cleaned_data)
            except errors.KumoError as exc:
                attach(form, exc, "name")
            else:
                messages.success(request, f"User {user.name} created. Grant them a role below.")
                return redirect("/manage/users/")
    return render(request, "dashboard/admin/users.html", {
        "users": identity.list_users(),
        "assignments": identity.list_assignments(),
        "form": form,
        "grant_form": _grant_form(),
    }, status=400 if form.errors else 200)


@require_POST
@dashboard_view("identity:project_user_roles:grant")
def role_grant(request: HttpRequest, ctx: RequestContext) -> HttpResponse:
    form = _grant_form(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        identity.grant_role(data["project"], data["user"], data["role"])
        messages.success(request, "Role granted.")
    else:
        messages.error(request, "Choose a user, a project and a role.")
    return redirect("/manage/users/")


@require_POST
@dashboard_view("identity:project_user_roles:revoke")
def role_revoke(
    request: HttpRequest, ctx: RequestContext, project_id: str, user_id: str, role_id: str
) -> HttpResponse:
    identity.revoke_role(project_id, user_id, role_id)
    messages.success(request, "Role revoked.")
    return redirect("/manage/users/")


@require_POST
@dashboard_view("identity:users:update")
def user_toggle(request: HttpRequest, ctx: RequestContext, user_id: str) -> HttpResponse:
    user = identity.get_user(user_id)
    try:
        identity.update_user(ctx, user.pk, enabled=not user.enabled)
    except errors.Forbidden as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"User {user.name} {'disabled' if user.enabled else 'enabled'}.")
    return redirect("/manage/users/")
