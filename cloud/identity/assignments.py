"""Who holds which role where: a user's roles on a project are those granted to the user and
those granted to any group the user belongs to (Keystone's effective assignments). Every reader
of roles — tokens, the projects a user may scope to, /v3/role_assignments — asks here, so a grant
through a group counts everywhere a direct one does.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from .models import Group, GroupRoleAssignment, Project, Role, RoleAssignment, User


def roles_of(user_id: str, project_id: str | None) -> list[tuple[str, str]]:
    """(role id, role name) of every role the user holds on the project, directly or through a
    group, sorted by name; none without a project."""
    if project_id is None:
        return []
    roles = Role.objects.filter(
        Q(assignments__user_id=user_id, assignments__project_id=project_id)
        | Q(group_assignments__group__users__id=user_id,
            group_assignments__project_id=project_id)
    ).distinct()
    return sorted(((r.id, r.name) for r in roles), key=lambda r: r[1])


def projects_of(user_id: str) -> QuerySet[Project]:
    """The projects on which the user holds at least one role, directly or through a group."""
    return Project.objects.filter(
        Q(assignments__user_id=user_id) | Q(group_assignments__group__users__id=user_id)
    ).distinct().order_by("name")


@dataclass(frozen=True)
class Assignment:
    """One row of /v3/role_assignments: a role on a project, held by a user or a group; `via`
    is the group an effective user assignment comes through."""

    role: Role
    project: Project
    user: User | None = None
    group: Group | None = None
    via: Group | None = None

    def key(self) -> tuple[str, str, str, str]:
        actor = self.user.name if self.user else f"~{self.group.name if self.group else ''}"
        via = self.via.name if self.via else ""
        return (self.project.name, actor, self.role.name, via)


def list_assignments(
    *,
    user_id: str | None = None,
    group_id: str | None = None,
    project_id: str | None = None,
    role_id: str | None = None,
    effective: bool = False,
) -> list[Assignment]:
    """Assignments matching every filter given. With `effective`, a group's assignments appear
    as one per member user (and the group filter then makes no sense: Keystone refuses it, and so
    does the caller)."""
    direct = RoleAssignment.objects.select_related("user", "project", "role")
    grouped = GroupRoleAssignment.objects.select_related("group", "project", "role")
    if project_id is not None:
        direct, grouped = direct.filter(project_id=project_id), grouped.filter(project_id=project_id)
    if role_id is not None:
        direct, grouped = direct.filter(role_id=role_id), grouped.filter(role_id=role_id)
    found: list[Assignment] = []
    if group_id is None:
        rows = direct.filter(user_id=user_id) if user_id is not None else direct
        found += [Assignment(role=a.role, project=a.project, user=a.user) for a in rows]
    if effective:
        if user_id is not None:
            grouped = grouped.filter(group__users__id=user_id)
        for a in grouped.prefetch_related("group__users"):
            for member in a.group.users.all():
                if user_id is None or member.id == user_id:
                    found.append(Assignment(role=a.role, project=a.project, user=member,
                                            via=a.group))
    elif user_id is None:
        if group_id is not None:
            grouped = grouped.filter(group_id=group_id)
        found += [Assignment(role=a.role, project=a.project, group=a.group) for a in grouped]
    return sorted(found, key=Assignment.key)
