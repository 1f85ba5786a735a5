"""Keystone v3 groups (cloud.identity.groups): the groups, who is in them, and roles granted to a
group on a project. Admins manage them; a user may list their own groups."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.identity import groups
from cloud.identity.models import Group
from cloud.validation import name_schema

from .identity_admin import DOMAIN_ID_FIELD, NULLABLE_TEXT, IdentityAdminView, envelope, pick

_GROUP_FIELDS = {
    "name": name_schema(64),
    "description": NULLABLE_TEXT,
    "domain_id": DOMAIN_ID_FIELD,
}
_GROUP_CREATE = envelope("group", _GROUP_FIELDS, ("name",))
_GROUP_UPDATE = envelope("group", _GROUP_FIELDS)


class GroupView(IdentityAdminView):
    def group_body(self, group: Group) -> dict:
        return {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "domain_id": group.domain_id,
            "links": {"self": self.v3_url("groups", group.id)},
        }


class GroupList(GroupView):
    body_schemas = {"POST": _GROUP_CREATE}
    query_params = {"GET": ("name", "domain_id")}

    def get(self, request: Request) -> Response:
        self.authorize("identity:groups:list")
        found = groups.list_groups(name=self.param("name"), domain_id=self.param("domain_id"))
        return self.list_response("groups", [self.group_body(g) for g in found])

    def post(self, request: Request) -> Response:
        self.authorize("identity:groups:create")
        data = self.valid_body("group")
        group = groups.create_group(**pick(data, "name", "description", "domain_id"))
        return Response({"group": self.group_body(group)}, status=201)


class GroupDetail(GroupView):
    body_schemas = {"PATCH": _GROUP_UPDATE}

    def get(self, request: Request, group_id: str) -> Response:
        self.authorize("identity:groups:show")
        return Response({"group": self.group_body(groups.get_group(group_id))})

    def patch(self, request: Request, group_id: str) -> Response:
        self.authorize("identity:groups:update")
        data = self.valid_body("group")
        group = groups.update_group(group_id, **pick(data, "name", "description", "domain_id"))
        return Response({"group": self.group_body(group)})

    def delete(self, request: Request, group_id: str) -> Response:
        self.authorize("identity:groups:delete")
        groups.delete_group(group_id)
        return Response(status=204)


class GroupUsers(GroupView):
    def get(self, request: Request, group_id: str) -> Response:
        self.authorize("identity:groups:users")
        return self.list_response("users", [self.user_body(u) for u in groups.users_of(group_id)])


class GroupUser(GroupView):
    """PUT adds the user to the group, GET/HEAD check it is there (204 or 404), DELETE removes."""

    def get(self, request: Request, group_id: str, user_id: str) -> Response:
        self.authorize("identity:groups:membership")
        groups.check_user(group_id, user_id)
        return Response(status=204)

    def put(self, request: Request, group_id: str, user_id: str) -> Response:
        self.authorize("identity:groups:membership")
        groups.add_user(group_id, user_id)
        return Response(status=204)

    def delete(self, request: Request, group_id: str, user_id: str) -> Response:
        self.authorize("identity:groups:membership")
        groups.remove_user(group_id, user_id)
        return Response(status=204)


class UserGroups(GroupView):
    def get(self, request: Request, user_id: str) -> Response:
        own = user_id == self.ctx.user_id
        self.authorize("identity:users:groups:own" if own else "identity:users:groups")
        return self.list_response("groups", [self.group_body(g) for g in groups.groups_of(user_id)])


class ProjectGroupRoles(IdentityAdminView):
    def get(self, request: Request, project_id: str, group_id: str) -> Response:
        self.authorize("identity:project_group_roles:list")
        roles = groups.roles_on_project(project_id, group_id)
        return self.list_response("roles", [self.role_body(r) for r in roles])


class ProjectGroupRole(IdentityAdminView):
    def get(self, request: Request, project_id: str, group_id: str, role_id: str) -> Response:
        self.authorize("identity:project_group_roles:check")
        groups.check_role(project_id, group_id, role_id)
        return Response(status=204)

    def put(self, request: Request, project_id: str, group_id: str, role_id: str) -> Response:
        self.authorize("identity:project_group_roles:grant")
        groups.grant_role(project_id, group_id, role_id)
        return Response(status=204)

    def delete(self, request: Request, project_id: str, group_id: str, role_id: str) -> Response:
        self.authorize("identity:project_group_roles:revoke")
        groups.revoke_role(project_id, group_id, role_id)
        return Response(status=204)


# Paths relative to /identity, joined into cloud/api/urls.py's identity_patterns.
urlpatterns = [
    path("/v3/groups", GroupList.as_view()),
    path("/v3/groups/<str:group_id>", GroupDetail.as_view()),
    path("/v3/groups/<str:group_id>/users", GroupUsers.as_view()),
    path("/v3/groups/<str:group_id>/users/<str:user_id>", GroupUser.as_view()),
    path("/v3/users/<str:user_id>/groups", UserGroups.as_view()),
    path("/v3/projects/<str:project_id>/groups/<str:group_id>/roles", ProjectGroupRoles.as_view()),
    path(
        "/v3/projects/<str:project_id>/groups/<str:group_id>/roles/<str:role_id>",
        ProjectGroupRole.as_view(),
    ),
]
