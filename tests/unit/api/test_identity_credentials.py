"""Application credentials (made, listed, shown without their secret, logged in with by id or by
name, restricted or not, expiring, deleted with their tokens) and EC2-style credentials (through
/v3/credentials and OS-EC2), each user's own."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from cloud.identity import credentials as credential_records
from cloud.identity.models import ApplicationCredential, Credential
from tests.personas import Persona

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


def make(persona: Persona, **fields) -> dict:
    body = {"application_credential": {"name": "ci", **fields}}
    return ok(call(persona, "post", f"/users/{persona.user.id}/application_credentials", body),
              201)["application_credential"]


def app_login(**ref):
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": ref}}}
    return Client().post(f"{V3}/auth/tokens", json.dumps(body), content_type="application/json")


def as_token(response) -> Persona:
    return Persona(user=None, project=None, token=response["X-Subject-Token"])


# --- application credentials


def test_made_shown_once_then_logged_in_with_by_id(member):
    made = make(member, description="for CI")
    secret = made["secret"]
    assert made["project_id"] == member.project.id
    assert made["unrestricted"] is False and made["expires_at"] is None
    assert sorted(r["name"] for r in made["roles"]) == ["member", "reader"]
    stored = ApplicationCredential.objects.get(pk=made["id"])
    assert secret not in stored.secret_hash

    shown = ok(call(member, "get", f"/users/{member.user.id}/application_credentials/{made['id']}"))
    assert "secret" not in shown["application_credential"]
    listed = ok(call(member, "get", f"/users/{member.user.id}/application_credentials"))
    assert [c["id"] for c in listed["application_credentials"]] == [made["id"]]
    assert all("secret" not in c for c in listed["application_credentials"])

    response = app_login(id=made["id"], secret=secret)
    assert response.status_code == 201, response.content
    token = response.json()["token"]
    assert token["methods"] == ["application_credential"]
    assert token["project"]["id"] == member.project.id
    assert token["application_credential"] == {"id": made["id"], "name": "ci",
                                               "restricted": True}
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]
    assert Client().get("/compute/v2.1/flavors",
                        HTTP_X_AUTH_TOKEN=response["X-Subject-Token"]).status_code == 200


def test_logged_in_with_by_name_and_user(member):
    made = make(member, secret="my-own-secret")
    assert made["secret"] == "my-own-secret"
    by_user_id = app_login(name="ci", secret="my-own-secret", user={"id": member.user.id})
    assert by_user_id.status_code == 201
    by_user_name = app_login(name="ci", secret="my-own-secret",
                             user={"name": member.user.name, "domain": {"id": "default"}})
    assert by_user_name.status_code == 201


def test_a_wrong_secret_or_reference_is_401(member):
    made = make(member)
    for ref in ({"id": made["id"], "secret": "wrong"}, {"id": "nope", "secret": made["secret"]},
                {"name": "ci", "secret": made["secret"]},  # a name without its user
                {"name": "ci", "secret": "wrong", "user": {"id": member.user.id}}):
        response = app_login(**ref)
        assert response.status_code == 401, ref
        assert "X-Subject-Token" not in response


def test_it_cannot_be_scoped_elsewhere(member, other):
    made = make(member)
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": made["id"],
                                                             "secret": made["secret"]}},
                     "scope": {"project": {"id": other.project.id}}}}
    response = Client().post(f"{V3}/auth/tokens", json.dumps(body),
                             content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Application credentials cannot request a scope."


def test_its_roles_are_a_subset_of_the_makers_and_bound_its_tokens(member, reader):
    made = make(member, roles=[{"name": "reader"}])
    assert [r["name"] for r in made["roles"]] == ["reader"]
    token = as_token(app_login(id=made["id"], secret=made["secret"]))
    # A reader's token may read but not create.
    response = Client().post("/image/v2/images", json.dumps({"name": "x"}),
                             content_type="application/json", HTTP_X_AUTH_TOKEN=token.token)
    assert response.status_code == 403
    # A role the making token does not carry cannot be delegated.
    refused = call(reader, "post", f"/users/{reader.user.id}/application_credentials",
                   {"application_credential": {"name": "x", "roles": [{"name": "member"}]}})
    assert refused.status_code == 403


def test_a_role_the_user_loses_leaves_its_tokens(member):
    made = make(member, roles=[{"name": "member"}])
    token = as_token(app_login(id=made["id"], secret=made["secret"]))
    member.user.assignments.filter(role__name="member").delete()
    assert Client().get("/compute/v2.1/flavors",
                        HTTP_X_AUTH_TOKEN=token.token).status_code == 401
    assert app_login(id=made["id"], secret=made["secret"]).status_code == 401


def test_expiry_is_echoed_as_keystone_writes_it_and_enforced(member):
    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    made = make(member, expires_at=soon.isoformat())
    assert made["expires_at"] == soon.isoformat()
    issued = app_login(id=made["id"], secret=made["secret"]).json()["token"]
    assert issued["expires_at"] <= soon.isoformat() + "Z"
    ApplicationCredential.objects.filter(pk=made["id"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert app_login(id=made["id"], secret=made["secret"]).status_code == 401
    past = call(member, "post", f"/users/{member.user.id}/application_credentials",
                {"application_credential": {"name": "old", "expires_at": "2001-01-01T00:00:00"}})
    assert past.status_code == 400


def test_a_restricted_one_cannot_make_or_delete_credentials_an_unrestricted_one_can(member):
    restricted = make(member, name="restricted")
    free = make(member, name="free", unrestricted=True)
    limited = as_token(app_login(id=restricted["id"], secret=restricted["secret"]))
    limited.user = member.user
    path = f"/users/{member.user.id}/application_credentials"
    assert call(limited, "post", path, {"application_credential": {"name": "child"}}
                ).status_code == 403
    assert call(limited, "delete", f"{path}/{free['id']}").status_code == 403
    ec2 = call(limited, "post", f"/users/{member.user.id}/credentials/OS-EC2",
               {"tenant_id": member.project.id})
    assert ec2.status_code == 403
    assert ApplicationCredential.objects.count() == 2 and Credential.objects.count() == 0

    unlimited = as_token(app_login(id=free["id"], secret=free["secret"]))
    ok(call(unlimited, "post", path, {"application_credential": {"name": "child"}}), 201)
    ok(call(unlimited, "delete", f"{path}/{restricted['id']}"), 204)


def test_a_token_renewed_from_one_keeps_its_limits(member):
    made = make(member, roles=[{"name": "reader"}])
    first = app_login(id=made["id"], secret=made["secret"])["X-Subject-Token"]
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": first}},
                     "scope": {"project": {"id": member.project.id}}}}
    response = Client().post(f"{V3}/auth/tokens", json.dumps(body),
                             content_type="application/json")
    assert response.status_code == 201, response.content
    renewed = response.json()["token"]
    assert [r["name"] for r in renewed["roles"]] == ["reader"]
    assert renewed["application_credential"]["id"] == made["id"]
    again = Persona(user=member.user, project=None, token=response["X-Subject-Token"])
    assert call(again, "post", f"/users/{member.user.id}/application_credentials",
                {"application_credential": {"name": "child"}}).status_code == 403


def test_deleting_it_ends_its_tokens(member):
    made = make(member)
    token = as_token(app_login(id=made["id"], secret=made["secret"]))
    ok(call(member, "delete", f"/users/{member.user.id}/application_credentials/{made['id']}"),
       204)
    assert Client().get("/compute/v2.1/flavors",
                        HTTP_X_AUTH_TOKEN=token.token).status_code == 401
    assert app_login(id=made["id"], secret=made["secret"]).status_code == 401


def test_each_users_own(member, other, admin):
    made = make(member)
    path = f"/users/{member.user.id}/application_credentials"
    assert call(other, "get", path).status_code == 403
    assert call(other, "get", f"{path}/{made['id']}").status_code == 403
    assert call(other, "delete", f"{path}/{made['id']}").status_code == 403
    assert call(admin, "post", path, {"application_credential": {"name": "x"}}).status_code == 403
    assert ok(call(admin, "get", path))["application_credentials"][0]["id"] == made["id"]
    assert call(member, "post", path, {"application_credential": {"name": "ci"}}
                ).status_code == 409
    assert call(member, "post", path, {"application_credential": {
        "name": "rules", "access_rules": [{"service": "compute", "method": "GET",
                                           "path": "/v2.1/servers"}]}}).status_code == 400


# --- EC2 credentials


def test_os_ec2_create_list_show_delete(member, caplog):
    caplog.set_level(logging.DEBUG)
    path = f"/users/{member.user.id}/credentials/OS-EC2"
    made = ok(call(member, "post", path, {"tenant_id": member.project.id}), 201)["credential"]
    assert made["user_id"] == member.user.id and made["tenant_id"] == member.project.id
    assert made["access"] and made["secret"] and made["trust_id"] is None
    listed = ok(call(member, "get", path))["credentials"]
    assert [(c["access"], c["secret"]) for c in listed] == [(made["access"], made["secret"])]
    shown = ok(call(member, "get", f"{path}/{made['access']}"))["credential"]
    assert shown["secret"] == made["secret"]

    # Kept for an EC2 API: its id is the SHA-256 of the access key, the secret is retrievable for
    # a signature check, and it is stored encrypted, never in clear, never logged.
    row = Credential.objects.get()
    assert row.id == hashlib.sha256(made["access"].encode()).hexdigest()
    assert made["secret"] not in row.encrypted_blob
    assert credential_records.ec2_secret(made["access"]).secret == made["secret"]
    assert made["secret"] not in caplog.text

    ok(call(member, "delete", f"{path}/{made['access']}"), 204)
    assert call(member, "get", f"{path}/{made['access']}").status_code == 404
    assert credential_records.ec2_secret(made["access"]) is None


def test_ec2_needs_a_project_the_user_has_a_role_on(member, other):
    path = f"/users/{member.user.id}/credentials/OS-EC2"
    assert call(member, "post", path, {"tenant_id": other.project.id}).status_code == 403
    assert call(member, "post", path, {"tenant_id": "no-such"}).status_code == 400
    assert call(member, "post", path, {}).status_code == 400
    assert call(other, "post", path, {"tenant_id": other.project.id}).status_code == 403
    assert Credential.objects.count() == 0


def test_v3_credentials_of_type_ec2(member, other, admin):
    blob = json.dumps({"access": "AKIA-TEST", "secret": "s3cr3t"})
    made = ok(call(member, "post", "/credentials", {"credential": {
        "type": "ec2", "user_id": member.user.id, "project_id": member.project.id,
        "blob": blob}}), 201)["credential"]
    assert made["id"] == hashlib.sha256(b"AKIA-TEST").hexdigest()
    assert json.loads(made["blob"]) == {"access": "AKIA-TEST", "secret": "s3cr3t"}
    # The same pair through OS-EC2, as `openstack ec2 credentials list` reads it.
    pairs = ok(call(member, "get", f"/users/{member.user.id}/credentials/OS-EC2"))["credentials"]
    assert [p["access"] for p in pairs] == ["AKIA-TEST"]

    assert ok(call(other, "get", "/credentials"))["credentials"] == []
    assert call(other, "get", f"/credentials/{made['id']}").status_code == 404
    assert call(other, "delete", f"/credentials/{made['id']}").status_code == 404
    assert [c["id"] for c in ok(call(admin, "get", f"/credentials?user_id={member.user.id}"))[
        "credentials"]] == [made["id"]]

    updated = ok(call(member, "patch", f"/credentials/{made['id']}", {"credential": {
        "blob": json.dumps({"access": "AKIA-TEST", "secret": "rotated"})}}))["credential"]
    assert json.loads(updated["blob"])["secret"] == "rotated"
    assert call(member, "patch", f"/credentials/{made['id']}", {"credential": {
        "user_id": other.user.id}}).status_code == 400
    for bad in ({"type": "ec2", "user_id": member.user.id, "blob": blob},
                {"type": "ec2", "user_id": member.user.id, "project_id": member.project.id,
                 "blob": "not json"},
                {"type": "ec2", "user_id": member.user.id, "project_id": member.project.id,
                 "blob": json.dumps({"access": "x"})}):
        assert call(member, "post", "/credentials", {"credential": bad}).status_code == 400
    assert call(member, "post", "/credentials", {"credential": {
        "type": "ec2", "user_id": member.user.id, "project_id": member.project.id,
        "blob": blob}}).status_code == 409
    assert call(member, "post", "/credentials", {"credential": {
        "type": "totp", "user_id": other.user.id, "blob": "x"}}).status_code == 403
    ok(call(member, "delete", f"/credentials/{made['id']}"), 204)


def test_a_changed_or_malformed_credential_key_is_a_clear_error_not_a_crash(member, settings):
    path = f"/users/{member.user.id}/credentials/OS-EC2"
    made = ok(call(member, "post", path, {"tenant_id": member.project.id}), 201)["credential"]
    settings.KUMO_CREDENTIAL_KEY = "A" * 43 + "="
    response = call(member, "get", f"{path}/{made['access']}")
    assert response.status_code == 503
    assert "credential key" in response.json()["error"]["message"]
    settings.KUMO_CREDENTIAL_KEY = "not-a-key"
    response = call(member, "post", path, {"tenant_id": member.project.id})
    assert response.status_code == 503
    assert "credential key" in response.json()["error"]["message"]
