"""Compute discovery, microversion negotiation, error shapes and request ids."""

import pytest
from django.test import Client


def test_compute_discovery_is_public_and_advertises_the_range():
    client = Client()
    root = client.get("/compute/")
    assert root.status_code == 200
    assert [v["id"] for v in root.json()["versions"]] == ["v2.0", "v2.1"]
    assert root.json()["versions"][1]["version"] == "2.104"
    for url in ("/compute/v2.1", "/compute/v2.1/"):
        v21 = client.get(url).json()["version"]
        assert v21["min_version"] == "2.1" and v21["version"] == "2.104"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, "2.1"),
        ({"HTTP_OPENSTACK_API_VERSION": "compute 2.37"}, "2.37"),
        ({"HTTP_X_OPENSTACK_NOVA_API_VERSION": "2.47"}, "2.47"),
        ({"HTTP_OPENSTACK_API_VERSION": "compute latest"}, "2.104"),
        ({"HTTP_OPENSTACK_API_VERSION": "compute 2.104"}, "2.104"),
    ],
)
def test_requested_microversion_is_echoed(member, headers, expected):
    response = Client().get("/compute/v2.1/flavors", HTTP_X_AUTH_TOKEN=member.token, **headers)
    assert response.status_code == 200
    assert response["OpenStack-API-Version"] == f"compute {expected}"
    assert response["X-OpenStack-Nova-API-Version"] == expected


@pytest.mark.django_db
@pytest.mark.parametrize("version, status", [("2.105", 406), ("3.0", 406), ("2.0", 406), ("abc", 400)])
def test_out_of_range_or_garbled_microversion_is_refused(member, version, status):
    response = Client().get(
        "/compute/v2.1/flavors", HTTP_X_AUTH_TOKEN=member.token, HTTP_X_OPENSTACK_NOVA_API_VERSION=version
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"


def test_missing_token_is_401_in_nova_shape():
    response = Client().get("/compute/v2.1/servers")
    assert response.status_code == 401
    assert response.json() == {
        "unauthorized": {"code": 401, "message": "The request you have made requires authentication."}
    }
    assert response["X-Compute-Request-ID"] == response["X-OpenStack-Request-ID"]


@pytest.mark.django_db
def test_wrong_token_is_401(db):
    response = Client().get("/compute/v2.1/servers", HTTP_X_AUTH_TOKEN="x" * 43)
    assert response.status_code == 401


@pytest.mark.django_db
def test_unknown_path_is_json_404_not_an_html_page(member):
    response = Client().get("/compute/v2.1/no-such-thing/at-all/", HTTP_X_AUTH_TOKEN=member.token)
    assert response.status_code == 404
    assert response.json()["itemNotFound"]["code"] == 404
