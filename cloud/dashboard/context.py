"""Who is asking, for the dashboard: the signed-in user, the project they picked, their roles there.

A browser has no token; the Django session says who the user is and which of their projects is
selected. From that the dashboard builds the same RequestContext an API token gives, so every
service function and every policy rule treats a click exactly like an API call.

Roles are read on every request (like `tokens.validate`), so a role revoked a second ago no longer
counts. A project the user lost every role on, or that was disabled, silently stops being the
selected one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from cloud import errors
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.identity.models import RoleAssignment, User

SESSION_KEY = "kumo_project_id"


@dataclass(frozen=True)
class ProjectChoice:
    id: str
    name: str


@dataclass(frozen=True)
class Selection:
    """The user's projects (for the switcher) and the context of the selected one."""

    projects: list[ProjectChoice]
    ctx: RequestContext | None


def _assignments(user: User) -> dict[str, tuple[str, set[str]]]:
    """project id → (project name, role names), for every enabled project the user has a role on;
    one query."""
    rows = (
        RoleAssignment.objects.filter(user=user, project__enabled=True)
        .values_list("project_id", "project__name", "role__name")
        .order_by("project__name")
    )
    found: dict[str, tuple[str, set[str]]] = {}
    for project_id, project_name, role in rows:
        found.setdefault(project_id, (project_name, set()))[1].add(role)
    return found


def select(user: User, session: Any, request_id: str = "-") -> Selection:
    """The user's projects and the context of the one their session selected (or a sensible
    default: their default project, else the first by name). None when they have no project."""
    if not getattr(user, "is_authenticated", False) or not user.enabled:
        return Selection(projects=[], ctx=None)
    found = _assignments(user)
    projects = [ProjectChoice(id=pid, name=name) for pid, (name, _) in found.items()]
    wanted = session.get(SESSION_KEY)
    if wanted not in found:
        wanted = user.default_project_id if user.default_project_id in found else None
        if wanted is None and projects:
            wanted = projects[0].id
        if wanted is not None and session.get(SESSION_KEY) != wanted:
            session[SESSION_KEY] = wanted
    if wanted is None:
        return Selection(projects=projects, ctx=None)
    name, roles = found[wanted]
    ctx = RequestContext(
        user_id=user.pk,
        user_name=user.name,
        project_id=wanted,
        project_name=name,
        roles=tuple(sorted(roles)),
        request_id=request_id,
    )
    return Selection(projects=projects, ctx=ctx)


def switch_project(request: HttpRequest, project_id: str) -> None:
    """Make `project_id` the selected project; 404 unless the user has a role on it (a project
    they cannot use looks exactly like one that does not exist)."""
    if project_id not in _assignments(request.user):
        raise errors.NotFound(f"Project {project_id} could not be found.")
    request.session[SESSION_KEY] = project_id


def authorize(ctx: RequestContext, rule: str) -> None:
    if not policy.allowed(ctx, rule):
        raise errors.Forbidden(f"Your role in project {ctx.project_name} does not allow this.")


def error_page(request: HttpRequest, exc: errors.KumoError) -> HttpResponse:
    """The page for an error a service raised: the same status the API would answer."""
    titles = {403: "Not allowed", 404: "Not found", 409: "Not now", 400: "Not accepted"}
    status = exc.status if exc.status in titles else 400
    template = "dashboard/fragments/error.html" if request.headers.get("HX-Request") else (
        "dashboard/error.html"
    )
    return render(
        request, template, {"title": titles[status], "message": exc.message, "status": status},
        status=status,
    )


View = Callable[..., HttpResponse]


def dashboard_view(rule: str | None = None) -> Callable[[View], View]:
    """Wrap a dashboard view: signed in, a selected project, the policy `rule` if given; the view
    is called as view(request, ctx, ...) and service errors become error pages."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            selection = select(request.user, request.session, getattr(request, "request_id", "-"))
            request.kumo_projects = selection.projects
            request.kumo = selection.ctx
            if selection.ctx is None:
                return render(request, "dashboard/no_project.html", status=403)
            try:
                if rule is not None:
                    authorize(selection.ctx, rule)
                return view(request, selection.ctx, *args, **kwargs)
            except errors.KumoError as exc:
                return error_page(request, exc)

        return wrapper

    return decorate
