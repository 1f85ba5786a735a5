"""PUT /servers/{id}: rename, access addresses, description, and the body it answers per version."""

import uuid

import pytest

from cloud.compute.models import Instance
from tests.factories import V, give_address, make_server

# What Nova's update answer holds at 2.1 (Tempest's update_server schema allows nothing else).
CORE_KEYS = {
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "created", "updated",
    "links", "image", "flavor", "addresses", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig",
    "progress",
}


def _put(api, server, body, version=None):
    return api.put(f"{V}/servers/{server.uuid}", body, version=version)


def test_member_renames_a_server_and_gets_the_core_body_back(member, api_as):
    server = make_server(member)
    give_address(server)
    response = _put(api_as(member), server, {"server": {"name": "renamed"}})
    assert response.status_code == 200, response.content
    body = response.json()["server"]
    assert set(body) == CORE_KEYS
    assert body["name"] == "renamed"
    assert body["addresses"] == {"private": [{"version": 4, "addr": "10.0.0.10"}]}
    assert api_as(member).get(f"{V}/servers/{server.uuid}").json()["server"]["name"] == "renamed"


def test_admin_update_answer_has_no_host_attributes(admin, member, api_as):
    server = make_server(member)
    body = _put(api_as(admin), server, {"server": {"name": "x"}}, version="2.16").json()["server"]
    assert not [k for k in body if k.startswith("OS-EXT")]
    assert "host_status" not in body


def test_non_ascii_names_are_accepted(member, api_as):
    server = make_server(member)
    name = "\u00cd\u00f1st\u00e1\u00f1c\u00e9-1"
    assert _put(api_as(member), server, {"server": {"name": name}}).json()["server"]["name"] == name


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("2.1", set(), {"locked", "description", "tags"}),
        ("2.9", {"locked"}, {"description", "tags"}),
        ("2.19", {"locked", "description"}, {"tags"}),
        ("2.26", {"locked", "description", "tags"}, set()),
        ("2.60", {"locked", "description", "tags"}, set()),
    ],
)
def test_update_body_grows_with_the_microversion(member, api_as, version, present, absent):
    server = make_server(member)
    response = _put(api_as(member), server, {"server": {"name": "v"}}, version=version)
    assert response.status_code == 200
    body = response.json()["server"]
    assert set(body) == CORE_KEYS | present
    assert not absent & set(body)
    assert response["OpenStack-API-Version"] == f"compute {version}"


def test_flavor_is_embedded_from_247(member, api_as):
    server = make_server(member)
    old = _put(api_as(member), server, {"server": {}}, version="2.46").json()["server"]["flavor"]
    new = _put(api_as(member), server, {"server": {}}, version="2.47").json()["server"]["flavor"]
    assert set(old) == {"id", "links"}
    assert new["original_name"] == "m1.tiny" and "id" not in new


def test_description_can_be_set_and_cleared_from_219(member, api_as):
    server = make_server(member)
    api = api_as(member)
    body = _put(api, server, {"server": {"description": "web tier"}}, version="2.19").json()
    assert body["server"]["description"] == "web tier"
    body = _put(api, server, {"server": {"description": None}}, version="2.19").json()
    assert body["server"]["description"] is None


def test_description_before_219_is_400(member, api_as):
    server = make_server(member)
    response = _put(api_as(member), server, {"server": {"description": "x"}}, version="2.18")
    assert response.status_code == 400
    assert response.json()["badRequest"]["code"] == 400


def test_access_addresses_are_stored_and_ipv6_normalised(member, api_as):
    server = make_server(member)
    body = {"server": {"accessIPv4": "192.0.2.7", "accessIPv6": "2001:0DB8:0000:0000::0001"}}
    shown = _put(api_as(member), server, body).json()["server"]
    assert shown["accessIPv4"] == "192.0.2.7"
    assert shown["accessIPv6"] == "2001:db8::1"
    server.refresh_from_db()
    assert server.access_ip_v6 == "2001:db8::1"
    cleared = _put(api_as(member), server, {"server": {"accessIPv4": "", "accessIPv6": ""}})
    assert cleared.json()["server"]["accessIPv4"] == "" == cleared.json()["server"]["accessIPv6"]


def test_an_empty_update_changes_nothing(member, api_as):
    server = make_server(member, name="same")
    response = _put(api_as(member), server, {"server": {}})
    assert response.status_code == 200
    assert response.json()["server"]["name"] == "same"


@pytest.mark.parametrize(
    "body",
    [
        {"server": {"name": ""}},
        {"server": {"name": " leading-space"}},
        {"server": {"name": "trailing-space "}},
        {"server": {"name": "a\x00b"}},
        {"server": {"name": "tab\there"}},
        {"server": {"name": "x" * 256}},
        {"server": {"name": 5}},
        {"server": {"accessIPv4": "300.1.1.1"}},
        {"server": {"accessIPv6": "not-an-address"}},
        {"server": {"accessIPv4": "2001:db8::1"}},
        {"server": {"bogus": 1}},
        {"server": "renamed"},
        {"name": "no server key"},
        [],
    ],
)
def test_malformed_updates_are_400_and_change_nothing(member, api_as, body):
    server = make_server(member, name="keep")
    response = api_as(member).put(f"{V}/servers/{server.uuid}", body, version="2.19")
    assert response.status_code == 400
    assert response.json()["badRequest"]["code"] == 400
    server.refresh_from_db()
    assert server.display_name == "keep"


def test_a_255_character_name_is_accepted(member, api_as):
    server = make_server(member)
    assert _put(api_as(member), server, {"server": {"name": "n" * 255}}).status_code == 200


def test_reader_cannot_update(reader, member, api_as):
    server = make_server(member, name="keep")
    response = _put(api_as(reader), server, {"server": {"name": "nope"}})
    assert response.status_code == 403
    assert response.json()["forbidden"]["code"] == 403
    server.refresh_from_db()
    assert server.display_name == "keep"


def test_another_projects_server_is_404_like_a_missing_one(other, member, api_as):
    server = make_server(member, name="keep")
    foreign = _put(api_as(other), server, {"server": {"name": "mine"}})
    missing = api_as(other).put(f"{V}/servers/{uuid.uuid4()}", {"server": {"name": "x"}})
    assert foreign.status_code == missing.status_code == 404
    assert "itemNotFound" in foreign.json()
    server.refresh_from_db()
    assert server.display_name == "keep"


def test_a_deleted_server_cannot_be_updated(member, api_as):
    server = make_server(member, deleted=True, vm_state="deleted")
    assert _put(api_as(member), server, {"server": {"name": "x"}}).status_code == 404


def test_a_locked_server_refuses_a_members_update_but_not_an_admins(member, admin, api_as):
    server = make_server(member, name="keep", locked=True)
    response = _put(api_as(member), server, {"server": {"name": "nope"}})
    assert response.status_code == 409
    assert response.json()["conflictingRequest"]["message"] == f"Instance {server.uuid} is locked"
    assert Instance.objects.get(pk=server.pk).display_name == "keep"
    assert _put(api_as(admin), server, {"server": {"name": "fixed"}}).status_code == 200
    assert Instance.objects.get(pk=server.pk).display_name == "fixed"
