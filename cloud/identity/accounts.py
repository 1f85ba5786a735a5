"""Identity administration: projects, users, roles and role assignments behind the Keystone v3 API.

Kumo has one domain, "default"; there is no project hierarchy and there are no domain- or
system-scoped assignments, so every assignment is (user or group, project, role); groups and
their grants are cloud.identity.groups', and what a user holds in effect cloud.identity.assignments'.

Tokens: disabling a user or project, deleting either, and changing a password end the tokens
already issued (Keystone does the same, and re-enabling does not bring them back). Role changes
need nothing here: `tokens.validate` recomputes a token's roles on every request.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError, QuerySet

from cloud import errors

from . import assignments, signals
from .context import RequestContext
from .models import Project, Role, RoleAssignment, Token, User

DEFAULT_DOMAIN = "default"
ADMIN_PROJECT = "admin"
# policy.py ranks these names; renaming or deleting one would silently change who may do what.
POLICY_ROLES = ("admin", "member", "reader")

_UNSET: Any = object()


def _check_domain(domain_id: str | None) -> None:
    if domain_id is not None and domain_id != DEFAULT_DOMAIN:
        raise errors.BadRequest(f"Domain {domain_id} does not exist; only 'default' does.")


def _filter_domain(qs: QuerySet, domain_id: str | None) -> QuerySet:
    if domain_id is None:
        return qs
    return qs.filter(domain_id=domain_id)


def _listed(qs: QuerySet, *, name: str | None, enabled: bool | None,
            domain_id: str | None) -> QuerySet:
    """Keystone's list filters, shared by projects and users: exact name, enabled, domain."""
    qs = _filter_domain(qs, domain_id)
    if name is not None:
        qs = qs.filter(name=name)
    if enabled is not None:
        qs = qs.filter(enabled=enabled)
    return qs.order_by("name")


def _get(model: Any, pk: str, noun: str) -> Any:
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise errors.NotFound(f"Could not find {noun}: {pk}.")
    return row


def _end_tokens(**where: Any) -> None:
    Token.objects.filter(**where).delete()


# --- projects -----------------------------------------------------------------------------------


def list_projects(
    *, name: str | None = None, enabled: bool | None = None, domain_id: str | None = None
) -> QuerySet[Project]:
    return _listed(Project.objects.all(), name=name, enabled=enabled, domain_id=domain_id)


def get_project(project_id: str) -> Project:
    project: Project = _get(Project, project_id, "project")
    return project


def create_project(
    *,
    name: str,
    description: str | None = None,
    enabled: bool = True,
    domain_id: str | None = None,
) -> Project:
    _check_domain(domain_id)
    try:
        with transaction.atomic():
            return Project.objects.create(
                name=name, description=description or "", enabled=enabled
            )
    except IntegrityError:
        raise _duplicate("project", name) from None


def update_project(
    project_id: str,
    *,
    name: str = _UNSET,
    description: str | None = _UNSET,
    enabled: bool = _UNSET,
    domain_id: str | None = _UNSET,
) -> Project:
    project = get_project(project_id)
    if domain_id is not _UNSET and domain_id != project.domain_id:
        raise errors.BadRequest("A project cannot move to another domain.")
    if project.name == ADMIN_PROJECT and (
        (name is not _UNSET and name != project.name) or enabled is False
    ):
        # Bootstrap's credential files scope the operator to it by name.
        raise errors.Forbidden(f"The '{ADMIN_PROJECT}' project cannot be renamed or disabled.")
    if name is not _UNSET:
        project.name = name
    if description is not _UNSET:
        project.description = description or ""
    disabling = enabled is False and project.enabled
    if enabled is not _UNSET:
        project.enabled = enabled
    try:
        with transaction.atomic():
            project.save()
            if disabling:
                _end_tokens(project=project)
    except IntegrityError:
        raise _duplicate("project", project.name) from None
    return project


def delete_project(project_id: str) -> None:
    project = get_project(project_id)
    if project.name == ADMIN_PROJECT:
        raise errors.Forbidden(f"The '{ADMIN_PROJECT}' project cannot be deleted.")
    try:
        with transaction.atomic():
            # Other domains refuse while the project holds live resources, and clear the history
            # rows that reference it (signals.py).
            signals.PROJECT_DELETING.send(sender=Project, project=project)
            project.delete()
    except ProtectedError:
        # Something was created for the project between those checks and the delete.
        raise errors.Conflict(f"Project {project_id} still has resources.") from None


def projects_of_user(user_id: str) -> QuerySet[Project]:
    """The projects on which the user holds at least one role, directly or through a group."""
    user = get_user(user_id)
    return assignments.projects_of(user.id)


# --- users --------------------------------------------------------------------------------------


def list_users(
    *, name: str | None = None, enabled: bool | None = None, domain_id: str | None = None
) -> QuerySet[User]:
    return _listed(User.objects.select_related("default_project"), name=name, enabled=enabled,
                   domain_id=domain_id)


def get_user(user_id: str) -> User:
    user: User = _get(User, user_id, "user")
    return user


def _project_ref(project_id: str | None) -> Project | None:
    if project_id is None:
        return None
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise errors.BadRequest(f"Default project {project_id} does not exist.")
    return project


def create_user(
    *,
    name: str,
    password: str | None = None,
    email: str | None = None,
    description: str | None = None,
    enabled: bool = True,
    default_project_id: str | None = None,
    domain_id: str | None = None,
) -> User:
    """A new user. `default_project_id` only says where an unscoped login lands: like Keystone,
    it grants no role."""
    _check_domain(domain_id)
    project = _project_ref(default_project_id)
    try:
        with transaction.atomic():
            # create_user hashes the password; None leaves an unusable one (the user cannot log in).
            return User.objects.create_user(
                name, password, email=email or "", description=description or "",
                enabled=enabled, default_project=project,
            )
    except IntegrityError:
        raise _duplicate("user", name) from None


def update_user(
    ctx: RequestContext,
    user_id: str,
    *,
    name: str = _UNSET,
    password: str | None = _UNSET,
    email: str | None = _UNSET,
    description: str | None = _UNSET,
    enabled: bool = _UNSET,
    default_project_id: str | None = _UNSET,
    domain_id: str | None = _UNSET,
) -> User:
    user = get_user(user_id)
    if domain_id is not _UNSET and domain_id != user.domain_id:
        raise errors.BadRequest("A user cannot move to another domain.")
    if enabled is False and user.id == ctx.user_id:
        raise errors.Forbidden("You cannot disable yourself.")
    if name is not _UNSET:
        user.name = name
    if email is not _UNSET:
        user.email = email or ""
    if description is not _UNSET:
        user.description = description or ""
    if default_project_id is not _UNSET:
        user.default_project = _project_ref(default_project_id)
    disabling = enabled is False and user.enabled
    if enabled is not _UNSET:
        user.enabled = enabled
    if password is not _UNSET:
        user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            if disabling or password is not _UNSET:
                _end_tokens(user=user)
    except IntegrityError:
        raise _duplicate("user", user.name) from None
    return user


def delete_user(ctx: RequestContext, user_id: str) -> None:
    user = get_user(user_id)
    if user.id == ctx.user_id:
        raise errors.Forbidden("You cannot delete yourself.")
    try:
        with transaction.atomic():
            signals.USER_DELETING.send(sender=User, user=user)
            user.delete()
    except ProtectedError:
        raise errors.Conflict(f"User {user_id} still owns resources.") from None


# --- roles --------------------------------------------------------------------------------------


def list_roles(*, name: str | None = None, domain_id: str | None = None) -> QuerySet[Role]:
    qs = Role.objects.all()
    if domain_id is not None:
        return qs.none()  # every role is global (domain_id null)
    if name is not None:
        qs = qs.filter(name=name)
    return qs.order_by("name")


def get_role(role_id: str) -> Role:
    role: Role = _get(Role, role_id, "role")
    return role


def create_role(
    *, name: str, description: str | None = None, domain_id: str | None = None
) -> Role:
    if domain_id is not None:
        raise errors.BadRequest("Domain-specific roles are not supported.")
    try:
        with transaction.atomic():
            return Role.objects.create(name=name, description=description or "")
    except IntegrityError:
        raise _duplicate("role", name) from None


def update_role(role_id: str, *, name: str = _UNSET, description: str | None = _UNSET) -> Role:
    role = get_role(role_id)
    if description is not _UNSET:
        role.description = description or ""
    if name is not _UNSET and name != role.name:
        if role.name in POLICY_ROLES:
            raise errors.Forbidden(
                f"The '{role.name}' role is used by policy and cannot be renamed."
            )
        role.name = name
    try:
        with transaction.atomic():
            role.save()
    except IntegrityError:
        raise _duplicate("role", name) from None
    return role


def delete_role(role_id: str) -> None:
    role = get_role(role_id)
    if role.name in POLICY_ROLES:
        raise errors.Forbidden(f"The '{role.name}' role is used by policy and cannot be deleted.")
    role.delete()


# --- role assignments ---------------------------------------------------------------------------


def grant_role(project_id: str, user_id: str, role_id: str) -> None:
    """Give the user the role on the project; granting it twice is not an error."""
    project, user, role = get_project(project_id), get_user(user_id), get_role(role_id)
    ensure_assignment(RoleAssignment, project=project, user=user, role=role)


def ensure_assignment(model: type[models.Model], **keys: object) -> None:
    """The assignment row `keys` names, made unless it exists (a user's or a group's)."""
    try:
        with transaction.atomic():
            model.objects.get_or_create(**keys)
    except IntegrityError:
        pass  # a concurrent grant of the same role won: the assignment exists, as asked


def revoke_role(project_id: str, user_id: str, role_id: str) -> None:
    project, user, role = get_project(project_id), get_user(user_id), get_role(role_id)
    deleted, _ = RoleAssignment.objects.filter(project=project, user=user, role=role).delete()
    if not deleted:
        raise _no_assignment(project, user, role)


def check_role(project_id: str, user_id: str, role_id: str) -> None:
    """Raise NotFound unless the user holds the role on the project."""
    project, user, role = get_project(project_id), get_user(user_id), get_role(role_id)
    if not RoleAssignment.objects.filter(project=project, user=user, role=role).exists():
        raise _no_assignment(project, user, role)


def roles_on_project(project_id: str, user_id: str) -> QuerySet[Role]:
    project, user = get_project(project_id), get_user(user_id)
    return Role.objects.filter(assignments__project=project, assignments__user=user).order_by(
        "name"
    )


def list_assignments() -> QuerySet[RoleAssignment]:
    """Every direct (user) assignment, for the dashboard's table; /v3/role_assignments reads
    cloud.identity.assignments, which knows groups."""
    return RoleAssignment.objects.select_related("user", "project", "role").order_by(
        "project__name", "user__name", "role__name"
    )


def _duplicate(kind: str, name: str) -> errors.Conflict:
    return errors.Conflict(f"Conflict occurred attempting to store {kind} - duplicate name {name}.")


def _no_assignment(project: Project, user: User, role: Role) -> errors.NotFound:
    return errors.NotFound(
        f"Could not find role assignment with role: {role.id}, user: {user.id}, "
        f"project: {project.id}."
    )
