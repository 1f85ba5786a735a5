"""Keystone v3 identity administration: projects, users, roles and role assignments, as the
`openstack project|user|role …` commands drive them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from cloud.compute.models import Instance
from cloud.identity import tokens
from cloud.identity.models import Project, Role, RoleAssignment, Token, User
from tests.personas import PASSWORD, Persona, make_persona

V3 = "/identity/v3"
SECRET = "pa55-w0rd-never-shown"

pytestmark = pytest.mark.django_db


def call(persona: Persona | None, method: str, path: str, body=None):
    headers = {"HTTP_X_AUTH_TOKEN": persona.token} if persona else {}
    client = Client()
    if method in ("post", "put", "patch"):
        data = json.dumps(body) if body is not None else ""
        return getattr(client, method)(
            V3 + path, data=data, content_type="application/json", **headers
        )
    return getattr(client, method)(V3 + path, **headers)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if response.content else {}


def login(name: str, password: str, project: str | None = None) -> str | None:
    user = tokens.authenticate_password(user_id=None, user_name=name, password=password)
    scope = Project.objects.get(name=project) if project else None
    return tokens.issue(user, scope, ["password"]).token


def as_token(token: str) -> Persona:
    return Persona(user=None, project=None, token=token)


def make_server(owner: Persona) -> Instance:
    return Instance.objects.create(
        display_name="vm1", project=owner.project, user=owner.user,
        vcpus=1, memory_mb=128, root_gb=1, vm_state="active",
    )


def role_id(name: str) -> str:
    return Role.objects.get_or_create(name=name)[0].id


# --- projects -----------------------------------------------------------------------------------


def test_admin_creates_shows_renames_and_deletes_a_project(admin):
    created = ok(call(admin, "post", "/projects", {"project": {"name": "gamma",
                                                               "description": "Team G"}}), 201)
    project = created["project"]
    assert project["name"] == "gamma" and project["enabled"] is True
    assert project["domain_id"] == "default" and project["parent_id"] == "default"
    assert project["is_domain"] is False and project["tags"] == [] and project["options"] == {}
    assert project["links"]["self"].endswith(f"{V3}/projects/{project['id']}")

    shown = ok(call(admin, "get", f"/projects/{project['id']}"))["project"]
    assert shown == project

    renamed = ok(call(admin, "patch", f"/projects/{project['id']}",
                      {"project": {"name": "gamma2", "description": None}}))["project"]
    assert renamed["name"] == "gamma2" and renamed["description"] == ""

    listed = ok(call(admin, "get", "/projects"))
    assert {"alpha", "gamma2"} <= {p["name"] for p in listed["projects"]}
    assert listed["links"]["next"] is None and listed["links"]["previous"] is None

    assert call(admin, "delete", f"/projects/{project['id']}").status_code == 204
    assert call(admin, "get", f"/projects/{project['id']}").status_code == 404


def test_a_project_name_is_found_through_the_name_filter_not_the_detail_path(admin):
    alpha = admin.project
    missing = call(admin, "get", "/projects/alpha")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 404
    found = ok(call(admin, "get", "/projects?name=alpha"))["projects"]
    assert [p["id"] for p in found] == [alpha.id]
    assert ok(call(admin, "get", "/projects?name=nope"))["projects"] == []


def test_a_duplicate_project_name_answers_409_on_create_and_on_rename(admin, other):
    duplicate = call(admin, "post", "/projects", {"project": {"name": "alpha"}})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["title"] == "Conflict"
    rename = call(admin, "patch", f"/projects/{other.project.id}", {"project": {"name": "alpha"}})
    assert rename.status_code == 409


def test_a_project_with_live_instances_cannot_be_deleted(admin, other):
    server = make_server(other)
    refused = call(admin, "delete", f"/projects/{other.project.id}")
    assert refused.status_code == 409
    assert "instance" in refused.json()["error"]["message"]

    Instance.objects.filter(pk=server.pk).update(deleted=True, vm_state="deleted")
    assert call(admin, "delete", f"/projects/{other.project.id}").status_code == 204
    assert not Project.objects.filter(pk=other.project.id).exists()
    assert not Instance.objects.filter(pk=server.pk).exists()


def test_the_admin_project_cannot_be_deleted_renamed_or_disabled(admin):
    project = Project.objects.create(name="admin")
    assert call(admin, "delete", f"/projects/{project.id}").status_code == 403
    assert call(admin, "patch", f"/projects/{project.id}",
                {"project": {"name": "root"}}).status_code == 403
    assert call(admin, "patch", f"/projects/{project.id}",
                {"project": {"enabled": False}}).status_code == 403
    assert call(admin, "patch", f"/projects/{project.id}",
                {"project": {"description": "ops"}}).status_code == 200


def test_disabling_a_project_ends_the_tokens_scoped_to_it(admin, member):
    assert call(member, "get", f"/users/{member.user.id}").status_code == 200
    ok(call(admin, "patch", f"/projects/{member.project.id}", {"project": {"enabled": False}}))
    assert call(member, "get", f"/users/{member.user.id}").status_code == 401
    # Re-enabling does not revive them, as in Keystone.
    Project.objects.filter(pk=member.project.id).update(enabled=True)
    assert call(member, "get", f"/users/{member.user.id}").status_code == 401


# --- users --------------------------------------------------------------------------------------


def test_a_user_created_with_a_project_gets_it_as_default_but_no_role(admin):
    body = {"user": {"name": "dave", "password": SECRET, "email": "dave@example.org",
                     "default_project_id": admin.project.id, "enabled": True}}
    user = ok(call(admin, "post", "/users", body), 201)["user"]
    assert user["default_project_id"] == admin.project.id
    assert user["domain_id"] == "default" and user["password_expires_at"] is None
    assert user["email"] == "dave@example.org"
    assert not RoleAssignment.objects.filter(user_id=user["id"]).exists()
    with pytest.raises(tokens.AuthenticationError):
        login("dave", SECRET, "alpha")  # no role on the project yet
    assert login("dave", SECRET) is not None


def test_admin_lists_shows_updates_and_deletes_a_user(admin):
    user = ok(call(admin, "post", "/users", {"user": {"name": "erin"}}), 201)["user"]
    assert "default_project_id" not in user and "email" not in user
    assert call(admin, "get", "/users/erin").status_code == 404
    assert [u["id"] for u in ok(call(admin, "get", "/users?name=erin"))["users"]] == [user["id"]]
    assert user["id"] in {u["id"] for u in ok(call(admin, "get", "/users"))["users"]}

    updated = ok(call(admin, "patch", f"/users/{user['id']}", {"user": {
        "name": "erin2", "email": "e@example.org", "enabled": False,
        "default_project_id": admin.project.id}}))["user"]
    assert updated["name"] == "erin2" and updated["enabled"] is False
    assert updated["email"] == "e@example.org" and updated["default_project_id"] == admin.project.id
    assert ok(call(admin, "get", f"/users/{user['id']}"))["user"] == updated
    assert ok(call(admin, "get", "/users?enabled=false"))["users"] == [updated]

    assert call(admin, "delete", f"/users/{user['id']}").status_code == 204
    assert call(admin, "get", f"/users/{user['id']}").status_code == 404


def test_a_users_description_is_kept_shown_changed_and_cleared_as_keystone_does(admin):
    # `openstack user create --description` and Ansible's identity_user send it; Keystone keeps it.
    body = {"user": {"name": "gina", "description": "Boots servers from Ansible"}}
    user = ok(call(admin, "post", "/users", body), 201)["user"]
    assert user["description"] == "Boots servers from Ansible"
    assert ok(call(admin, "get", f"/users/{user['id']}"))["user"]["description"] == (
        "Boots servers from Ansible")
    changed = ok(call(admin, "patch", f"/users/{user['id']}",
                      {"user": {"description": "Runs the nightly jobs"}}))["user"]
    assert changed["description"] == "Runs the nightly jobs"
    assert [u["description"] for u in ok(call(admin, "get", "/users?name=gina"))["users"]] == [
        "Runs the nightly jobs"]
    cleared = ok(call(admin, "patch", f"/users/{user['id']}", {"user": {"description": None}}))
    assert "description" not in cleared["user"]


def test_a_duplicate_user_name_answers_409(admin, member):
    assert call(admin, "post", "/users", {"user": {"name": "bob"}}).status_code == 409
    renamed = call(admin, "patch", f"/users/{admin.user.id}", {"user": {"name": "bob"}})
    assert renamed.status_code == 409


def test_a_default_project_that_does_not_exist_is_refused(admin):
    body = {"user": {"name": "frank", "default_project_id": "no-such-project"}}
    assert call(admin, "post", "/users", body).status_code == 400


def test_users_cannot_delete_or_disable_themselves(admin):
    assert call(admin, "delete", f"/users/{admin.user.id}").status_code == 403
    disabled = call(admin, "patch", f"/users/{admin.user.id}", {"user": {"enabled": False}})
    assert disabled.status_code == 403
    assert User.objects.get(pk=admin.user.id).enabled


def test_a_user_who_owns_live_instances_cannot_be_deleted(admin, other):
    make_server(other)
    assert call(admin, "delete", f"/users/{other.user.id}").status_code == 409
    Instance.objects.filter(user=other.user).update(deleted=True)
    assert call(admin, "delete", f"/users/{other.user.id}").status_code == 204


def test_a_disabled_users_token_stops_working_and_stays_dead_when_re_enabled(admin, member):
    assert call(member, "get", f"/users/{member.user.id}").status_code == 200
    ok(call(admin, "patch", f"/users/{member.user.id}", {"user": {"enabled": False}}))
    response = call(member, "get", f"/users/{member.user.id}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    with pytest.raises(tokens.AuthenticationError):
        login("bob", PASSWORD, "alpha")
    ok(call(admin, "patch", f"/users/{member.user.id}", {"user": {"enabled": True}}))
    assert call(member, "get", f"/users/{member.user.id}").status_code == 401
    assert login("bob", PASSWORD, "alpha")


def test_a_password_change_ends_old_tokens_and_the_new_password_logs_in(admin, member):
    ok(call(admin, "patch", f"/users/{member.user.id}", {"user": {"password": SECRET}}))
    assert call(member, "get", f"/users/{member.user.id}").status_code == 401
    with pytest.raises(tokens.AuthenticationError):
        login("bob", PASSWORD, "alpha")
    assert login("bob", SECRET, "alpha")


def test_the_password_never_appears_in_a_response_body(admin):
    bodies = []
    created = call(admin, "post", "/users", {"user": {"name": "gina", "password": SECRET}})
    bodies.append(created)
    user_id = created.json()["user"]["id"]
    bodies.append(call(admin, "patch", f"/users/{user_id}", {"user": {"password": SECRET + "2"}}))
    bodies.append(call(admin, "get", f"/users/{user_id}"))
    bodies.append(call(admin, "get", "/users"))
    bodies.append(call(admin, "post", "/users", {"user": {"name": "gina", "password": SECRET}}))
    bodies.append(call(admin, "post", "/users", {"user": {"name": 7, "password": SECRET}}))
    for response in bodies:
        text = response.content.decode()
        assert SECRET not in text and '"password"' not in text
        assert "pbkdf2" not in text and "md5" not in text
    stored = User.objects.get(pk=user_id).password
    assert SECRET not in stored


def test_any_user_reads_their_own_user_and_projects_but_no_one_elses(member, other):
    own = ok(call(member, "get", f"/users/{member.user.id}"))["user"]
    assert own["name"] == "bob"
    projects = ok(call(member, "get", f"/users/{member.user.id}/projects"))["projects"]
    assert [p["name"] for p in projects] == ["alpha"]
    assert call(member, "get", f"/users/{other.user.id}").status_code == 403
    assert call(member, "get", f"/users/{other.user.id}/projects").status_code == 403


def test_auth_projects_lists_the_enabled_projects_the_token_user_has_roles_on(member):
    gamma = Project.objects.create(name="gamma")
    RoleAssignment.objects.create(user=member.user, project=gamma, role_id=role_id("reader"))
    Project.objects.create(name="delta")  # no role there
    off = Project.objects.create(name="off", enabled=False)
    RoleAssignment.objects.create(user=member.user, project=off, role_id=role_id("reader"))
    projects = ok(call(member, "get", "/auth/projects"))["projects"]
    assert [p["name"] for p in projects] == ["alpha", "gamma"]


# --- roles --------------------------------------------------------------------------------------


def test_admin_creates_lists_renames_and_deletes_a_role(admin):
    role = ok(call(admin, "post", "/roles", {"role": {"name": "auditor"}}), 201)["role"]
    assert role["domain_id"] is None and role["options"] == {}
    assert role["links"]["self"].endswith(f"/roles/{role['id']}")
    assert call(admin, "get", "/roles/auditor").status_code == 404
    assert [r["id"] for r in ok(call(admin, "get", "/roles?name=auditor"))["roles"]] == [role["id"]]
    assert {"admin", "member", "reader", "auditor"} == {
        r["name"] for r in ok(call(admin, "get", "/roles"))["roles"]
    }
    renamed = ok(call(admin, "patch", f"/roles/{role['id']}", {"role": {"name": "observer"}}))
    assert renamed["role"]["name"] == "observer"
    assert call(admin, "post", "/roles", {"role": {"name": "observer"}}).status_code == 409
    assert call(admin, "delete", f"/roles/{role['id']}").status_code == 204
    assert call(admin, "get", f"/roles/{role['id']}").status_code == 404


def test_a_roles_description_is_kept_shown_and_changed_as_keystone_does(admin):
    # `openstack role create --description` and Ansible's identity_role send it (Keystone, Queens on).
    role = ok(call(admin, "post", "/roles", {"role": {"name": "auditor",
                                                      "description": "Reads the logs"}}), 201)["role"]
    assert role["description"] == "Reads the logs"
    assert ok(call(admin, "get", f"/roles/{role['id']}"))["role"]["description"] == "Reads the logs"
    changed = ok(call(admin, "patch", f"/roles/{role['id']}",
                      {"role": {"description": "Reads everything"}}))["role"]
    assert changed["description"] == "Reads everything" and changed["name"] == "auditor"
    # A description is no rename: the roles policy depends on take one too.
    member = ok(call(admin, "patch", f"/roles/{role_id('member')}",
                     {"role": {"description": "Works in a project"}}))["role"]
    assert member["name"] == "member" and member["description"] == "Works in a project"
    plain = ok(call(admin, "post", "/roles", {"role": {"name": "plain"}}), 201)["role"]
    assert "description" not in plain


@pytest.mark.parametrize("name", ["admin", "member", "reader"])
def test_roles_that_policy_depends_on_cannot_be_deleted_or_renamed(admin, name):
    rid = role_id(name)
    assert call(admin, "delete", f"/roles/{rid}").status_code == 403
    assert call(admin, "patch", f"/roles/{rid}", {"role": {"name": "x"}}).status_code == 403
    assert Role.objects.filter(name=name).exists()


# --- role assignments ---------------------------------------------------------------------------


def test_admin_grants_checks_lists_and_revokes_a_role_on_a_project(admin, other):
    path = f"/projects/{admin.project.id}/users/{other.user.id}/roles/{role_id('member')}"
    assert call(admin, "head", path).status_code == 404
    assert call(admin, "put", path).status_code == 204
    assert call(admin, "put", path).status_code == 204  # granting twice is fine
    assert call(admin, "head", path).status_code == 204
    assert call(admin, "get", path).status_code == 204
    listed = ok(call(admin, "get", f"/projects/{admin.project.id}/users/{other.user.id}/roles"))
    assert [r["name"] for r in listed["roles"]] == ["member"]
    assert login("mallory", PASSWORD, "alpha")

    assert call(admin, "delete", path).status_code == 204
    assert call(admin, "delete", path).status_code == 404
    assert call(admin, "get", path).status_code == 404


def test_granting_on_a_missing_project_user_or_role_answers_404(admin):
    p, u, r = admin.project.id, admin.user.id, role_id("member")
    for path in (f"/projects/nope/users/{u}/roles/{r}", f"/projects/{p}/users/nope/roles/{r}",
                 f"/projects/{p}/users/{u}/roles/nope"):
        assert call(admin, "put", path).status_code == 404


def test_role_assignments_filter_by_user_project_and_role_and_can_carry_names(admin, member, other):
    everything = ok(call(admin, "get", "/role_assignments"))["role_assignments"]
    assert len(everything) == RoleAssignment.objects.count()

    mine = ok(call(admin, "get", f"/role_assignments?user.id={member.user.id}"
                                 f"&scope.project.id={member.project.id}"))["role_assignments"]
    assert {a["role"]["id"] for a in mine} == {role_id("member"), role_id("reader")}
    first = mine[0]
    assert first["user"] == {"id": member.user.id}
    assert first["scope"] == {"project": {"id": member.project.id}}
    assert first["links"]["assignment"].endswith(
        f"/projects/{member.project.id}/users/{member.user.id}/roles/{first['role']['id']}"
    )

    by_role = ok(call(admin, "get", f"/role_assignments?role.id={role_id('admin')}"))
    assert [a["user"]["id"] for a in by_role["role_assignments"]] == [admin.user.id]

    named = ok(call(admin, "get", f"/role_assignments?user.id={other.user.id}"
                                  "&include_names=True"))["role_assignments"]
    assert {a["role"]["name"] for a in named} == {"member", "reader"}
    assert named[0]["user"] == {"id": other.user.id, "name": "mallory",
                                "domain": {"id": "default", "name": "Default"}}
    assert named[0]["scope"]["project"]["name"] == "beta"

    assert ok(call(admin, "get", "/role_assignments?scope.domain.id=default"))[
        "role_assignments"] == []


def test_revoking_a_role_takes_effect_for_tokens_already_issued(admin, member):
    second_admin = make_persona("zed", "alpha", ["admin"])
    assert call(second_admin, "get", "/projects").status_code == 200
    RoleAssignment.objects.create(user=second_admin.user, project=admin.project,
                                  role_id=role_id("reader"))
    path = f"/projects/{admin.project.id}/users/{second_admin.user.id}/roles/{role_id('admin')}"
    assert call(admin, "delete", path).status_code == 204
    assert call(second_admin, "get", "/projects").status_code == 403

    # With no role left on the project, the token no longer authenticates at all.
    for name in ("member", "reader"):
        path = f"/projects/{member.project.id}/users/{member.user.id}/roles/{role_id(name)}"
        assert call(admin, "delete", path).status_code == 204
    assert call(member, "get", f"/users/{member.user.id}").status_code == 401


# --- domains ------------------------------------------------------------------------------------


def test_the_default_domain_is_the_only_domain(member):
    domains = ok(call(member, "get", "/domains"))["domains"]
    assert [(d["id"], d["name"]) for d in domains] == [("default", "Default")]
    assert ok(call(member, "get", "/domains?name=Default"))["domains"][0]["id"] == "default"
    assert ok(call(member, "get", "/domains?name=Other"))["domains"] == []
    assert ok(call(member, "get", "/domains/default"))["domain"]["enabled"] is True
    assert call(member, "get", "/domains/Default").status_code == 404


# --- who may call what --------------------------------------------------------------------------


def _admin_calls(admin: Persona, target: Persona) -> list[tuple[str, str, dict | None]]:
    p, u, r = target.project.id, target.user.id, role_id("member")
    return [
        ("get", "/projects", None),
        ("post", "/projects", {"project": {"name": "x"}}),
        ("get", f"/projects/{p}", None),
        ("patch", f"/projects/{p}", {"project": {"description": "x"}}),
        ("delete", f"/projects/{p}", None),
        ("get", "/users", None),
        ("post", "/users", {"user": {"name": "x"}}),
        ("get", f"/users/{admin.user.id}", None),
        ("get", f"/users/{admin.user.id}/projects", None),
        ("patch", f"/users/{u}", {"user": {"email": "x@example.org"}}),
        ("delete", f"/users/{admin.user.id}", None),
        ("get", "/roles", None),
        ("post", "/roles", {"role": {"name": "x"}}),
        ("get", f"/roles/{r}", None),
        ("patch", f"/roles/{r}", {"role": {"name": "x"}}),
        ("delete", f"/roles/{r}", None),
        ("get", f"/projects/{p}/users/{u}/roles", None),
        ("get", f"/projects/{p}/users/{u}/roles/{r}", None),
        ("put", f"/projects/{p}/users/{u}/roles/{role_id('admin')}", None),
        ("delete", f"/projects/{p}/users/{u}/roles/{r}", None),
        ("get", "/role_assignments", None),
    ]


@pytest.mark.parametrize("who", ["member", "reader"])
def test_members_and_readers_get_403_on_every_admin_call(admin, member, reader, who):
    persona = {"member": member, "reader": reader}[who]
    for method, path, body in _admin_calls(admin, persona):
        response = call(persona, method, path, body)
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["error"]["code"] == 403
    assert not Project.objects.filter(name="x").exists()
    assert not RoleAssignment.objects.filter(user=persona.user, role__name="admin").exists()


def test_calls_without_a_token_get_401(admin):
    for method, path, body in _admin_calls(admin, admin) + [
        ("get", "/auth/projects", None),
        ("get", "/domains", None),
    ]:
        response = call(None, method, path, body)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["title"] == "Unauthorized"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/projects", {}),
        ("/projects", {"project": "gamma"}),
        ("/projects", {"project": {}}),
        ("/projects", {"project": {"name": ""}}),
        ("/projects", {"project": {"name": " padded"}}),
        ("/projects", {"project": {"name": "g", "enabled": "yes"}}),
        ("/projects", {"project": {"name": "g", "domain_id": "elsewhere"}}),
        ("/projects", {"project": {"name": "g", "parent_id": "some-project"}}),
        ("/projects", {"project": {"name": "g", "tags": ["a"]}}),
        ("/projects", {"project": {"name": "x" * 65}}),
        ("/users", {"user": {}}),
        ("/users", {"user": {"name": 7}}),
        ("/users", {"user": {"name": "h", "password": 123}}),
        ("/users", {"user": {"name": "h", "enabled": "true"}}),
        ("/users", {"user": {"name": "h", "description": 7}}),
        ("/roles", {"role": {}}),
        ("/roles", {"role": {"name": ["a"]}}),
        ("/roles", {"role": {"name": "r", "domain_id": "default"}}),
    ],
)
def test_malformed_bodies_answer_400_in_keystone_shape(admin, path, body):
    response = call(admin, "post", path, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == 400


def test_malformed_updates_and_query_filters_answer_400(admin):
    p = admin.project.id
    assert call(admin, "patch", f"/projects/{p}", {"project": {"enabled": 1}}).status_code == 400
    assert call(admin, "patch", f"/users/{admin.user.id}", {"user": []}).status_code == 400
    assert call(admin, "get", "/projects?enabled=maybe").status_code == 400
    raw = Client().post(V3 + "/projects", data="{not json", content_type="application/json",
                        HTTP_X_AUTH_TOKEN=admin.token)
    assert raw.status_code == 400


def test_tokens_of_a_deleted_user_are_gone(admin, other):
    assert call(admin, "delete", f"/users/{other.user.id}").status_code == 204
    assert not Token.objects.filter(user_id=other.user.id).exists()
    assert call(other, "get", "/auth/projects").status_code == 401
