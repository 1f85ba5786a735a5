"""Operator pages, identity side: projects (and their quotas), users (and their passwords) and role
assignments, through the services behind the Keystone and quota APIs, under the same admin
rules."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cloud import errors
from cloud.compute import quotas
from cloud.identity import accounts as identity
from cloud.identity.context import RequestContext

from .context import authorize, dashboard_view
from .forms import GrantForm, PasswordForm, ProjectForm, QuotaForm, UserForm, attach


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


# --- a user's password and removal


@require_http_methods(["GET", "POST"])
@dashboard_view("identity:users:update")
def user_password(request: HttpRequest, ctx: RequestContext, user_id: str) -> HttpResponse:
    """Set a new password for a user (Keystone's PATCH /v3/users/{id} with a password): their
    tokens end at once, so every session they had elsewhere must sign in again."""
    user = identity.get_user(user_id)
    form = PasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        identity.update_user(ctx, user.pk, password=form.cleaned_data["password"])
        messages.success(request, f"The password of {user.name} was changed; their tokens "
                                  "no longer work.")
        return redirect("/manage/users/")
    return render(request, "dashboard/admin/user_password.html", {"person": user, "form": form},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@dashboard_view("identity:users:delete")
def user_delete(request: HttpRequest, ctx: RequestContext, user_id: str) -> HttpResponse:
    user = identity.get_user(user_id)
    if request.method == "POST":
        try:
            identity.delete_user(ctx, user.pk)
        except (errors.Forbidden, errors.Conflict) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"User {user.name} deleted.")
        return redirect("/manage/users/")
    return render(request, "dashboard/confirm_simple.html", {
        "title": f"Delete user {user.name}?",
        "question": "Their role assignments, key pairs and tokens go with them. A user who "
                    "still owns instances cannot be deleted.",
        "button": "Delete user", "cancel": "/manage/users/",
    })


# --- project quotas


@require_http_methods(["GET", "POST"])
@dashboard_view("compute:quotas:update")
def project_quotas(request: HttpRequest, ctx: RequestContext, project_id: str) -> HttpResponse:
    """A project's limits, as `openstack quota set` changes them (PUT /os-quota-sets/{id}): only
    the values changed here are written, so the others keep following the defaults."""
    project = identity.get_project(project_id)
    limits, used = quotas.limits_and_usage(project.pk)
    form = QuotaForm(limits, request.POST or None)
    if request.method == "POST" and form.is_valid():
        changed = form.changed_limits()
        try:
            if changed:
                quotas.update_limits(project.pk, changed, force=form.cleaned_data["force"])
        except errors.BadRequest as exc:
            attach(form, exc, next((r for r in changed if f" for {r} " in exc.message), None))
        else:
            messages.success(request, f"Quotas of {project.name} updated." if changed
                             else f"Nothing changed in the quotas of {project.name}.")
            return redirect(f"/manage/projects/{project.pk}/quotas")
    defaults = quotas.default_limits()
    return render(request, "dashboard/admin/project_quotas.html", {
        "project": project, "form": form,
        "rows": [(form[r], used.get(r, 0), r in quotas.ENFORCED, defaults[r])
                 for r in quotas.RESOURCES],
    }, status=400 if form.errors else 200)


@require_POST
@dashboard_view("compute:quotas:delete")
def project_quotas_reset(request: HttpRequest, ctx: RequestContext, project_id: str) -> HttpResponse:
    project = identity.get_project(project_id)
    quotas.reset_limits(project.pk)
    messages.success(request, f"Quotas of {project.name} are the defaults again.")
    return redirect(f"/manage/projects/{project.pk}/quotas")
