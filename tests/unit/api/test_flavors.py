"""/flavors: list filters and paging, show, admin create and delete."""

import pytest

from cloud.compute.models import Flavor

V = "/compute/v2.1"


@pytest.fixture
def flavors(db):
    return [
        Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1),
        Flavor.objects.create(flavorid="2", name="m1.small", vcpus=1, memory_mb=512, root_gb=10),
        Flavor.objects.create(flavorid="3", name="m1.medium", vcpus=2, memory_mb=2048, root_gb=20),
    ]


def test_list_detail_and_show(member, api_as, flavors):
    api = api_as(member)
    listed = api.get(f"{V}/flavors").json()["flavors"]
    assert [f["id"] for f in listed] == ["1", "2", "3"]
    assert set(listed[0]) == {"id", "name", "links"}
    detail = api.get(f"{V}/flavors/detail").json()["flavors"][0]
    assert detail["ram"] == 128 and detail["swap"] == "" and detail["os-flavor-access:is_public"]
    assert api.get(f"{V}/flavors/2").json()["flavor"]["name"] == "m1.small"
    assert "description" in api.get(f"{V}/flavors/2", version="2.55").json()["flavor"]
    missing = api.get(f"{V}/flavors/m1.tiny")
    assert missing.status_code == 404 and "itemNotFound" in missing.json()


def test_filters_and_paging(member, api_as, flavors):
    api = api_as(member)
    ids = lambda r: [f["id"] for f in r.json()["flavors"]]
    assert ids(api.get(f"{V}/flavors?minDisk=10")) == ["2", "3"]
    assert ids(api.get(f"{V}/flavors/detail?minRam=1024")) == ["3"]
    page = api.get(f"{V}/flavors?limit=1").json()
    assert [f["id"] for f in page["flavors"]] == ["1"]
    assert "marker=1" in page["flavors_links"][0]["href"]
    assert ids(api.get(f"{V}/flavors?marker=1")) == ["2", "3"]
    assert api.get(f"{V}/flavors?marker=nope").status_code == 400
    assert ids(api.get(f"{V}/flavors/detail?is_public=None")) == ["1", "2", "3"]


@pytest.mark.parametrize("flavor_id", [None, 42, "b5c3c3a6-5ef4-4f6e-bf11-2d3a9f0e9b1e"])
def test_admin_creates_flavors_with_any_id_form(admin, api_as, flavor_id):
    body = {"flavor": {"name": f"f-{flavor_id}", "ram": "256", "vcpus": 1, "disk": 0, "id": flavor_id,
                       "os-flavor-access:is_public": True}}
    response = api_as(admin).post(f"{V}/flavors", body)
    assert response.status_code == 200, response.content
    created = response.json()["flavor"]
    assert created["ram"] == 256
    if flavor_id is not None:
        assert created["id"] == str(flavor_id)
    assert api_as(admin).delete(f"{V}/flavors/{created['id']}").status_code == 202
    assert not Flavor.objects.filter(flavorid=created["id"]).exists()


def test_member_cannot_create_and_duplicates_conflict(member, admin, api_as, flavors):
    body = {"flavor": {"name": "x", "ram": 64, "vcpus": 1, "disk": 0}}
    assert api_as(member).post(f"{V}/flavors", body).status_code == 403
    dup = {"flavor": {"name": "m1.tiny", "ram": 64, "vcpus": 1, "disk": 0}}
    assert api_as(admin).post(f"{V}/flavors", dup).status_code == 409
    bad = {"flavor": {"name": "y", "ram": -1, "vcpus": 1, "disk": 0}}
    assert api_as(admin).post(f"{V}/flavors", bad).status_code == 400
