"""Keystone's regions, services and endpoints, and the token catalog built from them: read by
everyone with a token, changed by admins only."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from cloud.bootstrap.seed import bootstrap
from cloud.identity.models import Endpoint, Region, Service
from tests.personas import PASSWORD, Persona

V3 = "/identity/v3"

pytestmark = pytest.mark.django_db


def call(persona: Persona | None, method: str, path: str, body=None, **extra):
    headers = {"HTTP_X_AUTH_TOKEN": persona.token} if persona else {}
    data = json.dumps(body) if body is not None else ""
    return Client().generic(method.upper(), V3 + path, data, content_type="application/json",
                            **headers, **extra)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if response.content else {}


def token_catalog(persona: Persona, **extra) -> list[dict]:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": persona.user.name, "password": PASSWORD}}},
        "scope": {"project": {"id": persona.project.id}}}}
    response = Client().post(f"{V3}/auth/tokens", json.dumps(body),
                             content_type="application/json", **extra)
    return ok(response, 201)["token"]["catalog"]


def test_a_first_token_gets_kumos_services_with_three_interfaces_each(member):
    catalog = token_catalog(member, HTTP_HOST="cloud.example:8443")
    by_type = {entry["type"]: entry for entry in catalog}
    assert set(by_type) == {"identity", "compute", "image", "network", "block-storage",
                            "volumev3", "ec2"}
    assert {e["url"] for e in by_type["ec2"]["endpoints"]} == {"http://cloud.example:8443/ec2"}
    # Block storage's URL names the token's project, as Cinder's catalog entries do.
    assert {e["url"] for e in by_type["block-storage"]["endpoints"]} == {
        f"http://cloud.example:8443/volume/v3/{member.project.id}"}
    assert by_type["compute"]["name"] == "nova"
    compute = by_type["compute"]["endpoints"]
    assert sorted(e["interface"] for e in compute) == ["admin", "internal", "public"]
    assert {e["url"] for e in compute} == {"http://cloud.example:8443/compute/v2.1"}
    assert {e["region_id"] for e in compute} == {"RegionOne"}
    # The same rows, as the catalog API shows them.
    services = ok(call(member, "get", "/services"))["services"]
    assert {s["id"] for s in services} == {entry["id"] for entry in catalog}
    assert ok(call(member, "get", "/auth/catalog"))["catalog"] == token_catalog(member)


def test_bootstrap_creates_the_catalog_once_and_keeps_an_operators_edits(tmp_path, admin):
    bootstrap(output_dir=tmp_path)
    assert Service.objects.count() == 7 and Endpoint.objects.count() == 21
    assert Region.objects.filter(pk="RegionOne").exists()
    Service.objects.filter(type="network").delete()
    bootstrap(output_dir=tmp_path)
    assert sorted(Service.objects.values_list("type", flat=True)) == [
        "block-storage", "compute", "ec2", "identity", "image", "volumev3"]
    # A catalog made before block storage gets it from the next bootstrap.
    Service.objects.filter(type__in=["block-storage", "volumev3", "ec2"]).delete()
    bootstrap(output_dir=tmp_path)
    assert Service.objects.filter(type="volumev3").count() == 1
    assert Service.objects.filter(type="ec2").count() == 1


def test_admin_adds_a_region_service_and_endpoint_and_every_token_sees_it(admin, member):
    token_catalog(member)  # the defaults
    region = ok(call(admin, "post", "/regions", {"region": {"id": "RegionTwo",
                                                           "description": "the other one"}}),
                201)["region"]
    assert region["id"] == "RegionTwo" and region["parent_region_id"] is None
    service = ok(call(admin, "post", "/services", {"service": {
        "type": "object-store", "name": "swift", "description": "objects"}}), 201)["service"]
    endpoint = ok(call(admin, "post", "/endpoints", {"endpoint": {
        "service_id": service["id"], "interface": "public", "region_id": "RegionTwo",
        "url": "https://objects.example/v1"}}), 201)["endpoint"]
    assert endpoint["region"] == endpoint["region_id"] == "RegionTwo"

    swift = next(e for e in token_catalog(member) if e["type"] == "object-store")
    assert swift["endpoints"] == [{"id": endpoint["id"], "interface": "public",
                                   "region": "RegionTwo", "region_id": "RegionTwo",
                                   "url": "https://objects.example/v1"}]
    # A disabled endpoint (or service) leaves the catalog; deleting the service takes its
    # endpoints with it.
    ok(call(admin, "patch", f"/endpoints/{endpoint['id']}", {"endpoint": {"enabled": False}}))
    assert "object-store" not in {e["type"] for e in token_catalog(member)}
    ok(call(admin, "delete", f"/services/{service['id']}"), 204)
    assert not Endpoint.objects.filter(pk=endpoint["id"]).exists()
    assert call(admin, "get", f"/endpoints/{endpoint['id']}").status_code == 404


def test_everyone_reads_the_catalog_only_admins_change_it(admin, member, reader):
    token_catalog(member)
    for who in (member, reader):
        assert call(who, "get", "/services").status_code == 200
        assert call(who, "get", "/endpoints").status_code == 200
        assert call(who, "get", "/regions").status_code == 200
        assert call(who, "post", "/services", {"service": {"type": "x"}}).status_code == 403
        assert call(who, "post", "/regions", {"region": {}}).status_code == 403
    service = Service.objects.first()
    assert call(member, "delete", f"/services/{service.id}").status_code == 403
    assert Service.objects.filter(pk=service.id).exists()
    assert call(None, "get", "/services").status_code == 401


def test_list_filters(admin, member):
    token_catalog(member)
    compute = ok(call(member, "get", "/services?type=compute"))["services"]
    assert [s["name"] for s in compute] == ["nova"]
    public = ok(call(member, "get", f"/endpoints?interface=public&service_id={compute[0]['id']}"))
    assert [e["url"].endswith("/compute/v2.1") for e in public["endpoints"]] == [True]
    assert ok(call(member, "get", "/endpoints?region_id=nowhere"))["endpoints"] == []


def test_bad_endpoints_are_400_and_regions_in_use_409(admin, member):
    token_catalog(member)
    service = Service.objects.get(type="image")
    for body in ({"service_id": service.id, "interface": "sideways", "url": "http://x"},
                 {"service_id": "nope", "interface": "public", "url": "http://x"},
                 {"service_id": service.id, "interface": "public", "url": "http://x",
                  "region_id": "Atlantis"},
                 {"service_id": service.id, "interface": "public", "url": "ftp://x"}):
        response = call(admin, "post", "/endpoints", {"endpoint": body})
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == 400
    assert call(admin, "delete", "/regions/RegionOne").status_code == 409
    child = ok(call(admin, "put", "/regions/Sub", {"region": {"parent_region_id": "RegionOne"}}),
               201)["region"]
    assert child["parent_region_id"] == "RegionOne"
    assert ok(call(admin, "get", "/regions?parent_region_id=RegionOne"))["regions"][0]["id"] \
        == "Sub"
    assert call(admin, "patch", "/regions/RegionOne", {"region": {"parent_region_id": "Sub"}}
                ).status_code == 400
    assert call(admin, "post", "/regions", {"region": {"id": "Sub"}}).status_code == 409
    ok(call(admin, "delete", "/regions/Sub"), 204)
