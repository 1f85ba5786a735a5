"""Keystone v3 identity administration: projects, users, roles, role assignments, the Default
domain, and the two self-service reads keystoneauth and the CLI need (own user, own projects).

Clients resolve names by asking for the id first and falling back to `?name=` on the list, so
every list takes a `name` filter and a detail GET with a name answers 404.
"""

from __future__ import annotations

from django.db.models import Model
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.identity import accounts, assignments
from cloud.identity.models import Project, Role, User
from cloud.validation import name_schema

from .base import IdentityView

DOMAIN = {"id": "default", "name": "Default"}
_TRUE = {"true", "1", "yes", "on", ""}
_FALSE = {"false", "0", "no", "off"}

NULLABLE_TEXT = {"type": ["string", "null"], "maxLength": 65535}
DOMAIN_ID_FIELD = {"type": ["string", "null"], "maxLength": 64}
_ID = {"type": ["string", "null"], "maxLength": 64}
_OPTIONS = {"type": "object"}


def envelope(key: str, fields: dict, required: tuple[str, ...] = ()) -> dict:
    # Unknown keys are let through and ignored, as Keystone stores them as "extra" attributes.
    return {
        "type": "object",
        "required": [key],
        "properties": {
            key: {
                "type": "object",
                "required": list(required),
                "properties": fields,
            }
        },
    }


_PROJECT_FIELDS = {
    "name": name_schema(64),
    "description": NULLABLE_TEXT,
    "enabled": {"type": "boolean"},
    "domain_id": DOMAIN_ID_FIELD,
    "parent_id": _ID,
    "is_domain": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "options": _OPTIONS,
}
_PROJECT_CREATE = envelope("project", _PROJECT_FIELDS, ("name",))
_PROJECT_UPDATE = envelope("project", _PROJECT_FIELDS)

_USER_FIELDS = {
    "name": name_schema(255),
    "password": {"type": ["string", "null"], "maxLength": 4096},
    "email": {"type": ["string", "null"], "maxLength": 254},
    "enabled": {"type": "boolean"},
    "default_project_id": _ID,
    "domain_id": DOMAIN_ID_FIELD,
    "description": NULLABLE_TEXT,
    "options": _OPTIONS,
}
_USER_CREATE = envelope("user", _USER_FIELDS, ("name",))
_USER_UPDATE = envelope("user", _USER_FIELDS)

_ROLE_FIELDS = {
    "name": name_schema(64),
    "description": NULLABLE_TEXT,
    "domain_id": DOMAIN_ID_FIELD,
    "options": _OPTIONS,
}
_ROLE_CREATE = envelope("role", _ROLE_FIELDS, ("name",))
_ROLE_UPDATE = envelope("role", _ROLE_FIELDS)


def pick(data: dict, *keys: str) -> dict:
    return {k: data[k] for k in keys if k in data}


class IdentityAdminView(IdentityView):
    def v3_url(self, *parts: str) -> str:
        return "/".join([self.base_url() + "/identity/v3", *parts])

    def list_response(self, key: str, items: list[dict]) -> Response:
        links = {
            "self": self.base_url() + self.request.get_full_path(),
            "previous": None,
            "next": None,
        }
        return Response({key: items, "links": links})

    def param(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def flag(self, name: str) -> bool | None:
        value = self.param(name)
        if value is None:
            return None
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise errors.BadRequest(f"Invalid value for query parameter {name}: {value}")

    def project_body(self, project: Project) -> dict:
        return {
            "id": project.id,
            "name": project.name,
            "description": project.description,
            "enabled": project.enabled,
            "domain_id": project.domain_id,
            # A top-level project's parent is its domain.
            "parent_id": project.domain_id,
            "is_domain": False,
            "tags": [],
            "options": {},
            "links": {"self": self.v3_url("projects", project.id)},
        }

    def user_body(self, user: User) -> dict:
        body = {
            "id": user.id,
            "name": user.name,
            "domain_id": user.domain_id,
            "enabled": user.enabled,
            "password_expires_at": None,
            "options": {},
            "links": {"self": self.v3_url("users", user.id)},
        }
        if user.default_project_id:
            body["default_project_id"] = user.default_project_id
        if user.email:
            body["email"] = user.email
        if user.description:
            body["description"] = user.description
        return body

    def role_body(self, role: Role) -> dict:
        body = {
            "id": role.id,
            "name": role.name,
            "domain_id": None,
            "options": {},
            "links": {"self": self.v3_url("roles", role.id)},
        }
        if role.description:
            body["description"] = role.description
        return body


def _refuse_unsupported(data: dict, kind: str) -> None:
    """Say so rather than silently drop what Kumo does not store."""
    if kind != "project":
        return
    if data.get("tags"):
        raise errors.BadRequest("Project tags are not supported.")
    if data.get("is_domain"):
        raise errors.BadRequest("Projects acting as domains are not supported.")
    if data.get("parent_id") not in (None, accounts.DEFAULT_DOMAIN):
        raise errors.BadRequest("Project hierarchies are not supported.")


# --- domains: only Default ----------------------------------------------------------------------


def _domain_body(view: IdentityAdminView) -> dict:
    return {
        **DOMAIN,
        "description": "The default domain",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": {"self": view.v3_url("domains", DOMAIN["id"])},
    }


class DomainList(IdentityAdminView):
    query_params = {"GET": ("name", "enabled")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:domains:list")
        name, enabled = self.param("name"), self.flag("enabled")
        matches = (name is None or name == DOMAIN["name"]) and enabled is not False
        return self.list_response("domains", [_domain_body(self)] if matches else [])


class DomainDetail(IdentityAdminView):
    def get(self, request: Request, domain_id: str) -> Response:
        self.authorize("identity:domains:show")
        if domain_id != DOMAIN["id"]:
            raise errors.NotFound(f"Could not find domain: {domain_id}.")
        return Response({"domain": _domain_body(self)})


# --- projects -----------------------------------------------------------------------------------


class ProjectList(IdentityAdminView):
    body_schemas = {"POST": _PROJECT_CREATE}
    query_params = {"GET": ("name", "enabled", "domain_id", "is_domain", "parent_id", "tags",
                            "tags-any")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:projects:list")
        enabled = self.flag("enabled")  # read first: a malformed flag is a 400 whatever else
        if self.flag("is_domain") or self.param("tags") or self.param("tags-any"):
            return self.list_response("projects", [])
        parent = self.param("parent_id")
        if parent is not None and parent != accounts.DEFAULT_DOMAIN:
            return self.list_response("projects", [])
        projects = accounts.list_projects(
            name=self.param("name"), enabled=enabled, domain_id=self.param("domain_id")
        )
        return self.list_response("projects", [self.project_body(p) for p in projects])

    def post(self, request: Request) -> Response:
        self.authorize("identity:projects:create")
        data = self.valid_body("project")
        _refuse_unsupported(data, "project")
        project = accounts.create_project(
            **pick(data, "name", "description", "enabled", "domain_id")
        )
        return Response({"project": self.project_body(project)}, status=201)


class ProjectDetail(IdentityAdminView):
    body_schemas = {"PATCH": _PROJECT_UPDATE}

    def get(self, request: Request, project_id: str) -> Response:
        self.authorize("identity:projects:show")
        return Response({"project": self.project_body(accounts.get_project(project_id))})

    def patch(self, request: Request, project_id: str) -> Response:
        self.authorize("identity:projects:update")
        data = self.valid_body("project")
        _refuse_unsupported(data, "project")
        project = accounts.update_project(
            project_id, **pick(data, "name", "description", "enabled", "domain_id")
        )
        return Response({"project": self.project_body(project)})

    def delete(self, request: Request, project_id: str) -> Response:
        self.authorize("identity:projects:delete")
        accounts.delete_project(project_id)
        return Response(status=204)


class AuthProjects(IdentityAdminView):
    """The projects the token's user may scope to (keystoneauth's and the dashboard's picker)."""

    def get(self, request: Request) -> Response:
        self.authorize("identity:auth:projects")
        projects = accounts.projects_of_user(self.ctx.user_id).filter(enabled=True)
        return self.list_response("projects", [self.project_body(p) for p in projects])


# --- users --------------------------------------------------------------------------------------

_USER_KEYS = (
    "name", "password", "email", "description", "enabled", "default_project_id", "domain_id"
)


class UserList(IdentityAdminView):
    body_schemas = {"POST": _USER_CREATE}
    query_params = {"GET": ("name", "enabled", "domain_id")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:users:list")
        users = accounts.list_users(
            name=self.param("name"), enabled=self.flag("enabled"), domain_id=self.param("domain_id")
        )
        return self.list_response("users", [self.user_body(u) for u in users])

    def post(self, request: Request) -> Response:
        self.authorize("identity:users:create")
        data = self.valid_body("user")
        _refuse_unsupported(data, "user")
        user = accounts.create_user(**pick(data, *_USER_KEYS))
        return Response({"user": self.user_body(user)}, status=201)


class UserDetail(IdentityAdminView):
    body_schemas = {"PATCH": _USER_UPDATE}

    def get(self, request: Request, user_id: str) -> Response:
        own = user_id == self.ctx.user_id
        self.authorize("identity:users:show:own" if own else "identity:users:show")
        return Response({"user": self.user_body(accounts.get_user(user_id))})

    def patch(self, request: Request, user_id: str) -> Response:
        self.authorize("identity:users:update")
        data = self.valid_body("user")
        _refuse_unsupported(data, "user")
        user = accounts.update_user(self.ctx, user_id, **pick(data, *_USER_KEYS))
        return Response({"user": self.user_body(user)})

    def delete(self, request: Request, user_id: str) -> Response:
        self.authorize("identity:users:delete")
        accounts.delete_user(self.ctx, user_id)
        return Response(status=204)


class UserProjects(IdentityAdminView):
    def get(self, request: Request, user_id: str) -> Response:
        own = user_id == self.ctx.user_id
        self.authorize("identity:users:projects:own" if own else "identity:users:projects")
        projects = accounts.projects_of_user(user_id)
        return self.list_response("projects", [self.project_body(p) for p in projects])


# --- roles --------------------------------------------------------------------------------------


class RoleList(IdentityAdminView):
    body_schemas = {"POST": _ROLE_CREATE}
    query_params = {"GET": ("name", "domain_id")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:roles:list")
        roles = accounts.list_roles(name=self.param("name"), domain_id=self.param("domain_id"))
        return self.list_response("roles", [self.role_body(r) for r in roles])

    def post(self, request: Request) -> Response:
        self.authorize("identity:roles:create")
        data = self.valid_body("role")
        _refuse_unsupported(data, "role")
        role = accounts.create_role(**pick(data, "name", "description", "domain_id"))
        return Response({"role": self.role_body(role)}, status=201)


class RoleDetail(IdentityAdminView):
    body_schemas = {"PATCH": _ROLE_UPDATE}

    def get(self, request: Request, role_id: str) -> Response:
        self.authorize("identity:roles:show")
        return Response({"role": self.role_body(accounts.get_role(role_id))})

    def patch(self, request: Request, role_id: str) -> Response:
        self.authorize("identity:roles:update")
        data = self.valid_body("role")
        _refuse_unsupported(data, "role")
        if data.get("domain_id") is not None:
            raise errors.BadRequest("Domain-specific roles are not supported.")
        role = accounts.update_role(role_id, **pick(data, "name", "description"))
        return Response({"role": self.role_body(role)})

    def delete(self, request: Request, role_id: str) -> Response:
        self.authorize("identity:roles:delete")
        accounts.delete_role(role_id)
        return Response(status=204)


# --- role assignments ---------------------------------------------------------------------------


class ProjectUserRoles(IdentityAdminView):
    def get(self, request: Request, project_id: str, user_id: str) -> Response:
        self.authorize("identity:project_user_roles:list")
        roles = accounts.roles_on_project(project_id, user_id)
        return self.list_response("roles", [self.role_body(r) for r in roles])


class ProjectUserRole(IdentityAdminView):
    def get(self, request: Request, project_id: str, user_id: str, role_id: str) -> Response:
        self.authorize("identity:project_user_roles:check")
        accounts.check_role(project_id, user_id, role_id)
        return Response(status=204)

    def put(self, request: Request, project_id: str, user_id: str, role_id: str) -> Response:
        self.authorize("identity:project_user_roles:grant")
        accounts.grant_role(project_id, user_id, role_id)
        return Response(status=204)

    def delete(self, request: Request, project_id: str, user_id: str, role_id: str) -> Response:
        self.authorize("identity:project_user_roles:revoke")
        accounts.revoke_role(project_id, user_id, role_id)
        return Response(status=204)


class RoleAssignmentList(IdentityAdminView):
    query_params = {"GET": ("user.id", "scope.project.id", "role.id", "scope.domain.id", "group.id",
                            "scope.system", "scope.OS-INHERIT:inherited_to", "include_names",
                            "effective")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:role_assignments:list")
        # Read first: a malformed flag is a 400 whatever else.
        names = bool(self.flag("include_names"))
        effective = "effective" in request.query_params and self.flag("effective") is not False
        # Kumo has no system scope, no domain-scoped and no inherited assignments, so asking for
        # any of them finds none.
        if (self.param("scope.system") or self.param("scope.OS-INHERIT:inherited_to")
                or self.param("scope.domain.id")):
            return self.list_response("role_assignments", [])
        if effective and self.param("group.id"):
            raise errors.BadRequest("group.id cannot be combined with effective: an effective "
                                    "listing names users, not groups.")
        found = assignments.list_assignments(
            user_id=self.param("user.id"),
            group_id=self.param("group.id"),
            project_id=self.param("scope.project.id"),
            role_id=self.param("role.id"),
            effective=effective,
        )
        return self.list_response(
            "role_assignments", [self.assignment_body(a, names) for a in found]
        )

    def assignment_body(self, a: assignments.Assignment, names: bool) -> dict:
        project = _ref(a.project, names)
        if names:
            project["domain"] = dict(DOMAIN)
        body: dict = {"role": _ref(a.role, names), "scope": {"project": project}}
        grantee = a.via or a.group
        if a.user is not None:
            body["user"] = _ref(a.user, names)
        else:
            assert a.group is not None
            body["group"] = _ref(a.group, names)
        for who in ("user", "group"):
            if names and who in body:
                body[who]["domain"] = dict(DOMAIN)
        if grantee is not None:
            link = self.v3_url("projects", a.project.pk, "groups", grantee.pk, "roles", a.role.pk)
            body["links"] = {"assignment": link}
            if a.via is not None and a.user is not None:
                body["links"]["membership"] = self.v3_url("groups", a.via.pk, "users", a.user.pk)
        else:
            assert a.user is not None
            link = self.v3_url("projects", a.project.pk, "users", a.user.pk, "roles", a.role.pk)
            body["links"] = {"assignment": link}
        return body


def _ref(obj: Model, with_name: bool) -> dict:
    return {"id": obj.pk, "name": obj.name} if with_name else {"id": obj.pk}


# Paths relative to /identity, joined into cloud/api/urls.py's identity_patterns.
urlpatterns = [
    path("/v3/auth/projects", AuthProjects.as_view()),
    path("/v3/domains", DomainList.as_view()),
    path("/v3/domains/<str:domain_id>", DomainDetail.as_view()),
    path("/v3/projects", ProjectList.as_view()),
    path("/v3/projects/<str:project_id>", ProjectDetail.as_view()),
    path("/v3/projects/<str:project_id>/users/<str:user_id>/roles", ProjectUserRoles.as_view()),
    path(
        "/v3/projects/<str:project_id>/users/<str:user_id>/roles/<str:role_id>",
        ProjectUserRole.as_view(),
    ),
    path("/v3/users", UserList.as_view()),
    path("/v3/users/<str:user_id>", UserDetail.as_view()),
    path("/v3/users/<str:user_id>/projects", UserProjects.as_view()),
    path("/v3/roles", RoleList.as_view()),
    path("/v3/roles/<str:role_id>", RoleDetail.as_view()),
    path("/v3/role_assignments", RoleAssignmentList.as_view()),
]
