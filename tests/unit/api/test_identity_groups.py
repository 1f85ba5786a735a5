"""Keystone groups: membership, roles granted to a group on a project (held by its users in
their tokens, at once), and /v3/role_assignments with `effective`."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from cloud.identity.models import Group, Project, Role, User
from tests.personas import PASSWORD, Persona, make_persona

V3 = "/identity/v3"

pytestmark = pytest.mark.django_db


def call(persona: Persona | None, method: str, path: str, body=None):
    headers = {"HTTP_X_AUTH_TOKEN": persona.token} if persona else {}
    data = json.dumps(body) if body is not None else ""
    return Client().generic(method.upper(), V3 + path, data, content_type="application/json",
                            **headers)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if response.content else {}


def login(user: User, project: Project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user.id, "password": PASSWORD}}}, "scope": {"project": {"id": project.id}}}}
    return Client().post(f"{V3}/auth/tokens", json.dumps(body), content_type="application/json")


def role(name: str) -> Role:
    return Role.objects.get_or_create(name=name)[0]


@pytest.fixture
def lonely(db) -> User:
    """A user with no role anywhere."""
    return User.objects.create_user("lonely", PASSWORD)


def test_admin_creates_renames_lists_and_deletes_a_group(admin):
    group = ok(call(admin, "post", "/groups", {"group": {"name": "ops", "description": "on call"}}),
               201)["group"]
    assert group["domain_id"] == "default" and group["description"] == "on call"
    assert group["links"]["self"].endswith(f"/identity/v3/groups/{group['id']}")
    assert call(admin, "post", "/groups", {"group": {"name": "ops"}}).status_code == 409
    ok(call(admin, "patch", f"/groups/{group['id']}", {"group": {"name": "sre"}}))
    assert [g["name"] for g in ok(call(admin, "get", "/groups?name=sre"))["groups"]] == ["sre"]
    ok(call(admin, "delete", f"/groups/{group['id']}"), 204)
    assert call(admin, "get", f"/groups/{group['id']}").status_code == 404


def test_membership_put_check_list_and_remove(admin, member):
    group = ok(call(admin, "post", "/groups", {"group": {"name": "ops"}}), 201)["group"]
    path = f"/groups/{group['id']}/users/{member.user.id}"
    assert call(admin, "head", path).status_code == 404
    ok(call(admin, "put", path), 204)
    ok(call(admin, "put", path), 204)  # again: no error, no duplicate
    assert call(admin, "head", path).status_code == 204
    assert call(admin, "get", path).status_code == 204
    users = ok(call(admin, "get", f"/groups/{group['id']}/users"))["users"]
    assert [u["id"] for u in users] == [member.user.id]
    # A user lists their own groups; someone else's only an admin may.
    own = ok(call(member, "get", f"/users/{member.user.id}/groups"))["groups"]
    assert [g["name"] for g in own] == ["ops"]
    other = make_persona("mallory", "beta", ["member"])
    assert call(other, "get", f"/users/{member.user.id}/groups").status_code == 403
    ok(call(admin, "delete", path), 204)
    assert call(admin, "delete", path).status_code == 404
    assert call(admin, "put", f"/groups/{group['id']}/users/nobody").status_code == 404


def test_a_role_granted_to_a_group_is_held_by_its_users_in_their_tokens(admin, lonely):
    project = Project.objects.create(name="shared-work")
    group = Group.objects.create(name="ops")
    member_role = role("member")
    assert login(lonely, project).status_code == 401  # no role there yet

    grant = f"/projects/{project.id}/groups/{group.id}/roles/{member_role.id}"
    ok(call(admin, "put", grant), 204)
    assert call(admin, "head", grant).status_code == 204
    assert login(lonely, project).status_code == 401  # the group has no members yet

    ok(call(admin, "put", f"/groups/{group.id}/users/{lonely.id}"), 204)
    response = login(lonely, project)
    assert response.status_code == 201, response.content
    token = response["X-Subject-Token"]
    assert [r["name"] for r in response.json()["token"]["roles"]] == ["member"]
    # The project is one the user may scope to, as keystoneauth and the dashboard ask.
    me = Persona(user=lonely, project=project, token=token)
    assert [p["name"] for p in ok(call(me, "get", "/auth/projects"))["projects"]] == [
        "shared-work"]

    # Leaving the group ends the access at once, in tokens already issued too.
    ok(call(admin, "delete", f"/groups/{group.id}/users/{lonely.id}"), 204)
    assert Client().get("/compute/v2.1/flavors", HTTP_X_AUTH_TOKEN=token).status_code == 401


def test_revoking_the_group_grant_ends_it_too(admin, lonely):
    project = Project.objects.create(name="shared-work")
    group = Group.objects.create(name="ops")
    group.users.add(lonely)
    grant = f"/projects/{project.id}/groups/{group.id}/roles/{role('reader').id}"
    ok(call(admin, "put", grant), 204)
    roles = ok(call(admin, "get", f"/projects/{project.id}/groups/{group.id}/roles"))["roles"]
    assert [r["name"] for r in roles] == ["reader"]
    assert login(lonely, project).status_code == 201
    ok(call(admin, "delete", grant), 204)
    assert call(admin, "delete", grant).status_code == 404
    assert login(lonely, project).status_code == 401


def test_role_assignments_show_group_grants_and_expand_them_when_effective(admin, member):
    project = Project.objects.create(name="shared-work")
    group = Group.objects.create(name="ops")
    group.users.add(member.user)
    reader = role("reader")
    ok(call(admin, "put", f"/projects/{project.id}/groups/{group.id}/roles/{reader.id}"), 204)

    listed = ok(call(admin, "get", f"/role_assignments?scope.project.id={project.id}"))
    assert listed["role_assignments"] == [{
        "role": {"id": reader.id}, "group": {"id": group.id},
        "scope": {"project": {"id": project.id}},
        "links": {"assignment": f"http://testserver/identity/v3/projects/{project.id}/groups/"
                                f"{group.id}/roles/{reader.id}"}}]
    by_group = ok(call(admin, "get", f"/role_assignments?group.id={group.id}"))
    assert len(by_group["role_assignments"]) == 1

    effective = ok(call(admin, "get", f"/role_assignments?effective&user.id={member.user.id}"))
    rows = effective["role_assignments"]
    via_group = [r for r in rows if r["scope"]["project"]["id"] == project.id]
    assert len(via_group) == 1
    assert via_group[0]["user"] == {"id": member.user.id}
    assert "group" not in via_group[0]
    assert via_group[0]["links"]["membership"].endswith(
        f"/groups/{group.id}/users/{member.user.id}")
    # Their direct roles on alpha are there too; without effective, only the direct ones.
    assert {r["scope"]["project"]["id"] for r in rows} == {member.project.id, project.id}
    direct = ok(call(admin, "get", f"/role_assignments?user.id={member.user.id}"))
    assert {r["scope"]["project"]["id"] for r in direct["role_assignments"]} == {
        member.project.id}
    assert call(admin, "get", f"/role_assignments?effective&group.id={group.id}"
                ).status_code == 400


def test_only_admins_manage_groups(admin, member, reader):
    group = Group.objects.create(name="ops")
    for who in (member, reader):
        assert call(who, "get", "/groups").status_code == 403
        assert call(who, "post", "/groups", {"group": {"name": "x"}}).status_code == 403
        assert call(who, "put", f"/groups/{group.id}/users/{who.user.id}").status_code == 403
        grant = f"/projects/{who.project.id}/groups/{group.id}/roles/{role('admin').id}"
        assert call(who, "put", grant).status_code == 403
    assert not group.users.exists() and not group.assignments.exists()


def test_deleting_a_group_takes_its_grants_with_it(admin, lonely):
    project = Project.objects.create(name="shared-work")
    group = Group.objects.create(name="ops")
    group.users.add(lonely)
    ok(call(admin, "put", f"/projects/{project.id}/groups/{group.id}/roles/{role('member').id}"),
       204)
    assert login(lonely, project).status_code == 201
    ok(call(admin, "delete", f"/groups/{group.id}"), 204)
    assert login(lonely, project).status_code == 401
    assert User.objects.filter(pk=lonely.pk).exists()
