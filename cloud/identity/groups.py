"""Keystone groups: create, rename, delete; who is in them; and the roles granted to a group on a
project, which each of its users then holds (cloud.identity.assignments).

Tokens need nothing here: `tokens.validate` recomputes a token's roles on every request, so a
user added to or removed from a group, or a grant to a group, takes effect at once.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from cloud import errors

from .accounts import DEFAULT_DOMAIN, ensure_assignment, get_project, get_role, get_user
from .models import Group, GroupRoleAssignment, Role, User

_UNSET: Any = object()


def _check_domain(domain_id: str | None) -> None:
    if domain_id is not None and domain_id != DEFAULT_DOMAIN:
        raise errors.BadRequest(f"Domain {domain_id} does not exist; only 'default' does.")


def _duplicate(name: str) -> errors.Conflict:
    return errors.Conflict(f"Conflict occurred attempting to store group - duplicate name {name}.")


def list_groups(*, name: str | None = None, domain_id: str | None = None) -> QuerySet[Group]:
    groups = Group.objects.all()
    if domain_id is not None:
        groups = groups.filter(domain_id=domain_id)
    if name is not None:
        groups = groups.filter(name=name)
    return groups.order_by("name")


def get_group(group_id: str) -> Group:
    group = Group.objects.filter(pk=group_id).first()
    if group is None:
        raise errors.NotFound(f"Could not find group: {group_id}.")
    return group


def create_group(
    *, name: str, description: str | None = None, domain_id: str | None = None
) -> Group:
    _check_domain(domain_id)
    try:
        with transaction.atomic():
            return Group.objects.create(name=name, description=description or "")
    except IntegrityError:
        raise _duplicate(name) from None


def update_group(
    group_id: str, *, name: str = _UNSET, description: str | None = _UNSET,
    domain_id: str | None = _UNSET,
) -> Group:
    group = get_group(group_id)
    if domain_id is not _UNSET and domain_id != group.domain_id:
        raise errors.BadRequest("A group cannot move to another domain.")
    if name is not _UNSET:
        group.name = name
    if description is not _UNSET:
        group.description = description or ""
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError:
        raise _duplicate(group.name) from None
    return group


def delete_group(group_id: str) -> None:
    """The group, its memberships and its grants go; its users keep only what they hold
    otherwise."""
    get_group(group_id).delete()


# --- membership


def users_of(group_id: str) -> QuerySet[User]:
    return get_group(group_id).users.order_by("name")


def groups_of(user_id: str) -> QuerySet[Group]:
    return get_user(user_id).member_of.order_by("name")


def add_user(group_id: str, user_id: str) -> None:
    """Put the user in the group; already being there is not an error."""
    get_group(group_id).users.add(get_user(user_id))


def remove_user(group_id: str, user_id: str) -> None:
    group, user = get_group(group_id), get_user(user_id)
    if not group.users.filter(pk=user.pk).exists():
        raise _not_in_group(group, user)
    group.users.remove(user)


def check_user(group_id: str, user_id: str) -> None:
    """NotFound unless the user is in the group."""
    group, user = get_group(group_id), get_user(user_id)
    if not group.users.filter(pk=user.pk).exists():
        raise _not_in_group(group, user)


def _not_in_group(group: Group, user: User) -> errors.NotFound:
    return errors.NotFound(f"User {user.id} is not a member of group {group.id}.")


# --- roles granted to a group


def grant_role(project_id: str, group_id: str, role_id: str) -> None:
    """Give the group the role on the project; granting it twice is not an error."""
    project, group, role = get_project(project_id), get_group(group_id), get_role(role_id)
    ensure_assignment(GroupRoleAssignment, project=project, group=group, role=role)


def revoke_role(project_id: str, group_id: str, role_id: str) -> None:
    project, group, role = get_project(project_id), get_group(group_id), get_role(role_id)
    deleted, _ = GroupRoleAssignment.objects.filter(
        project=project, group=group, role=role
    ).delete()
    if not deleted:
        raise _no_assignment(project_id, group_id, role_id)


def check_role(project_id: str, group_id: str, role_id: str) -> None:
    project, group, role = get_project(project_id), get_group(group_id), get_role(role_id)
    if not GroupRoleAssignment.objects.filter(project=project, group=group, role=role).exists():
        raise _no_assignment(project_id, group_id, role_id)


def roles_on_project(project_id: str, group_id: str) -> QuerySet[Role]:
    project, group = get_project(project_id), get_group(group_id)
    return Role.objects.filter(
        group_assignments__project=project, group_assignments__group=group
    ).order_by("name")


def _no_assignment(project_id: str, group_id: str, role_id: str) -> errors.NotFound:
    return errors.NotFound(
        f"Could not find role assignment with role: {role_id}, group: {group_id}, "
        f"project: {project_id}."
    )
