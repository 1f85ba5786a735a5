"""Keystone v3 subset: discovery without a token, password tokens, validation and revocation."""

import json

import pytest
from django.test import Client

from tests.personas import PASSWORD


def _password_body(user="bob", password=PASSWORD, project="alpha", **scope):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}},
            },
        }
    }
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    return body


def _post(client, body, **headers):
    return client.post(
        "/identity/v3/auth/tokens", data=json.dumps(body), content_type="application/json", **headers
    )


def test_discovery_documents_are_public():
    client = Client()
    root = client.get("/identity")
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"] == "v3.14"
    v3 = client.get("/identity/v3")
    assert v3.status_code == 200
    assert v3.json()["version"]["links"][0]["href"].endswith("/identity/v3/")
    assert root["X-OpenStack-Request-ID"].startswith("req-")


@pytest.mark.django_db
def test_password_token_carries_catalog_roles_and_subject_header(member):
    response = _post(Client(), _password_body())
    assert response.status_code == 201
    token = response["X-Subject-Token"]
    assert len(token) >= 40
    body = response.json()["token"]
    assert body["project"]["name"] == "alpha"
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    types = {entry["type"]: entry for entry in body["catalog"]}
    assert set(types) == {"identity", "compute", "image", "network", "block-storage",
                          "volumev3", "ec2"}
    compute = next(e for e in types["compute"]["endpoints"] if e["interface"] == "public")
    assert compute["url"].endswith("/compute/v2.1") and compute["region"] == "RegionOne"
    assert token not in json.dumps(body)  # the secret travels only in the header


@pytest.mark.django_db
def test_only_the_token_hash_is_stored(member):
    from cloud.identity.models import Token

    token = _post(Client(), _password_body())["X-Subject-Token"]
    assert not Token.objects.filter(token_hash=token).exists()
    assert all(token not in t.token_hash for t in Token.objects.all())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        _password_body(password="wrong"),
        _password_body(user="nobody"),
        _password_body(project="beta"),
        _password_body(project="no-such-project"),
    ],
)
def test_bad_credentials_or_scope_answer_401_in_keystone_shape(member, other, body):
    response = _post(Client(), body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert "X-Subject-Token" not in response


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["{not json", "[]", '{"auth": {}}', '{"auth": {"identity": {"methods": "password"}}}'])
def test_malformed_auth_bodies_answer_400(raw):
    response = Client().post("/identity/v3/auth/tokens", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


@pytest.mark.django_db
def test_token_validation_and_revocation(member):
    client = Client()
    token = _post(client, _password_body())["X-Subject-Token"]
    auth = {"HTTP_X_AUTH_TOKEN": token, "HTTP_X_SUBJECT_TOKEN": token}
    assert client.get("/identity/v3/auth/tokens", **auth).status_code == 200
    assert client.head("/identity/v3/auth/tokens", **auth).status_code == 200
    assert client.delete("/identity/v3/auth/tokens", **auth).status_code == 204
    again = client.get("/compute/v2.1/servers", HTTP_X_AUTH_TOKEN=token)
    assert again.status_code == 401


@pytest.mark.django_db
def test_a_token_traded_for_another_keeps_its_expiry(member):
    first = _post(Client(), _password_body())
    body = {"auth": {"identity": {"methods": ["token"],
                                  "token": {"id": first["X-Subject-Token"]}}}}
    second = _post(Client(), body)
    assert second.status_code == 201, second.content
    assert second.json()["token"]["expires_at"] == first.json()["token"]["expires_at"]


@pytest.mark.django_db
def test_expired_token_is_refused(member, settings):
    from datetime import timedelta

    from django.utils import timezone

    from cloud.identity.models import Token

    Token.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get("/compute/v2.1/servers", HTTP_X_AUTH_TOKEN=member.token)
    assert response.status_code == 401
    assert response.json()["unauthorized"]["code"] == 401
