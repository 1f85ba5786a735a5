"""/flavors/{id}/os-extra_specs: admins set, show, update and unset; everyone reads."""

import pytest

from cloud.compute.models import Flavor

V = "/compute/v2.1/flavors/1/os-extra_specs"


@pytest.fixture
def flavor(db):
    return Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)


def test_set_get_update_show_unset(admin, api_as, flavor):
    api = api_as(admin)
    created = api.post(V, {"extra_specs": {"hw:cpu_policy": "shared", "key2": "v2"}})
    assert created.status_code == 200
    assert created.json() == {"extra_specs": {"hw:cpu_policy": "shared", "key2": "v2"}}
    assert api.put(f"{V}/key2", {"key2": "v3"}).json() == {"key2": "v3"}
    assert api.get(f"{V}/key2").json() == {"key2": "v3"}
    assert api.delete(f"{V}/key2").status_code == 200
    assert api.get(f"{V}/key2").status_code == 404
    assert api.get(V).json() == {"extra_specs": {"hw:cpu_policy": "shared"}}
    assert "extra_specs" not in api.get("/compute/v2.1/flavors/1").json()["flavor"]  # 2.61+ only


def test_members_read_but_may_not_change(admin, member, api_as, flavor):
    api_as(admin).post(V, {"extra_specs": {"k": "v"}})
    assert api_as(member).get(V).json() == {"extra_specs": {"k": "v"}}
    assert api_as(member).get(f"{V}/k").json() == {"k": "v"}
    assert api_as(member).post(V, {"extra_specs": {"k": "x"}}).status_code == 403
    assert api_as(member).put(f"{V}/k", {"k": "x"}).status_code == 403
    assert api_as(member).delete(f"{V}/k").status_code == 403


@pytest.mark.parametrize("path, method, body", [
    (V, "post", {"extra_specs": {}}),
    (V, "post", {"extra_specs": {"k": 1}}),
    (V, "post", {"extra_specs": {"bad\x00key": "v"}}),
    (f"{V}/k", "put", {"other": "v"}),
    (f"{V}/k", "put", {"k": "v", "j": "w"}),
])
def test_malformed_specs_are_400(admin, api_as, flavor, path, method, body):
    assert getattr(api_as(admin), method)(path, body).status_code == 400


def test_unknown_flavor_or_key_is_404(admin, api_as, flavor):
    assert api_as(admin).get("/compute/v2.1/flavors/nope/os-extra_specs").status_code == 404
    assert api_as(admin).delete(f"{V}/missing").status_code == 404
