"""/servers/{id}/metadata[/{key}] and /servers/{id}/ips[/{network}]."""

import uuid

import pytest

from cloud.compute.models import Instance
from cloud.identity.models import Quota
from tests.factories import V, give_address, make_server


@pytest.fixture
def server(member):
    return make_server(member, metadata={"key1": "value1", "key2": "value2"})


def _meta(server, key=None):
    base = f"{V}/servers/{server.uuid}/metadata"
    return base if key is None else f"{base}/{key}"


def test_a_server_without_metadata_lists_an_empty_object(member, api_as):
    bare = make_server(member)
    response = api_as(member).get(_meta(bare))
    assert response.status_code == 200
    assert response.json() == {"metadata": {}}


def test_reader_lists_and_shows_metadata(reader, server, api_as):
    api = api_as(reader)
    assert api.get(_meta(server)).json() == {"metadata": {"key1": "value1", "key2": "value2"}}
    response = api.get(_meta(server, "key2"))
    assert response.status_code == 200
    assert response.json() == {"meta": {"key2": "value2"}}


def test_post_merges_and_answers_the_whole_set(member, server, api_as):
    response = api_as(member).post(_meta(server), {"metadata": {"key1": "alt1", "key3": "value3"}})
    assert response.status_code == 200
    expected = {"key1": "alt1", "key2": "value2", "key3": "value3"}
    assert response.json() == {"metadata": expected}
    assert Instance.objects.get(pk=server.pk).metadata == expected


def test_post_of_nothing_keeps_what_is_there(member, server, api_as):
    response = api_as(member).post(_meta(server), {"metadata": {}})
    assert response.json() == {"metadata": {"key1": "value1", "key2": "value2"}}


def test_put_replaces_the_whole_set(member, server, api_as):
    api = api_as(member)
    response = api.put(_meta(server), {"metadata": {"meta2": "data2", "meta3": "data3"}})
    assert response.status_code == 200
    assert response.json() == {"metadata": {"meta2": "data2", "meta3": "data3"}}
    assert api.put(_meta(server), {"metadata": {}}).json() == {"metadata": {}}
    assert api.get(_meta(server)).json() == {"metadata": {}}


def test_put_of_one_item_sets_it_and_answers_it(member, server, api_as):
    api = api_as(member)
    response = api.put(_meta(server, "nova"), {"meta": {"nova": "alt"}})
    assert response.status_code == 200
    assert response.json() == {"meta": {"nova": "alt"}}
    assert api.get(_meta(server)).json()["metadata"] == {
        "key1": "value1", "key2": "value2", "nova": "alt",
    }


def test_keys_with_spaces_colons_and_dots_work_in_the_url(member, server, api_as):
    api = api_as(member)
    key = "os:release 1.2"
    assert api.put(_meta(server, "os:release%201.2"), {"meta": {key: "x"}}).status_code == 200
    assert api.get(_meta(server, "os:release%201.2")).json() == {"meta": {key: "x"}}


@pytest.mark.parametrize(
    "body",
    [
        {"meta": {"other": "v"}},
        {"meta": {"key": "v", "second": "v"}},
        {"meta": {}},
        {"metadata": {"key": "v"}},
        {"meta": "v"},
    ],
)
def test_put_of_one_item_needs_exactly_the_key_in_the_url(member, server, api_as, body):
    response = api_as(member).put(_meta(server, "key"), body)
    assert response.status_code == 400
    assert "badRequest" in response.json()
    assert "key" not in Instance.objects.get(pk=server.pk).metadata


def test_delete_of_an_item_is_204_and_removes_only_it(member, server, api_as):
    api = api_as(member)
    response = api.delete(_meta(server, "key1"))
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(_meta(server)).json() == {"metadata": {"key2": "value2"}}


def test_a_missing_item_is_404_to_show_and_delete(member, server, api_as):
    api = api_as(member)
    for response in (api.get(_meta(server, "nope")), api.delete(_meta(server, "nope"))):
        assert response.status_code == 404
        assert response.json()["itemNotFound"]["code"] == 404


@pytest.mark.parametrize(
    "items",
    [
        {"": "blank key"},
        {"k" * 256: "key too long"},
        {"bad/key": "slash"},
        {"bad\nkey": "control character"},
        {"key": "v" * 256},
        {"key": "line\nbreak"},
        {"key": 5},
        {"key": None},
    ],
)
def test_invalid_keys_and_values_are_400(member, server, api_as, items):
    api = api_as(member)
    assert api.post(_meta(server), {"metadata": items}).status_code == 400
    assert api.put(_meta(server), {"metadata": items}).status_code == 400
    assert Instance.objects.get(pk=server.pk).metadata == {"key1": "value1", "key2": "value2"}


def test_longest_key_and_value_are_accepted(member, server, api_as):
    items = {"k" * 255: "v" * 255}
    assert api_as(member).post(_meta(server), {"metadata": items}).status_code == 200


@pytest.mark.parametrize("body", [{"meta": {"a": "b"}}, {}, {"metadata": "x"}, []])
def test_a_body_without_a_metadata_object_is_400(member, server, api_as, body):
    assert api_as(member).post(_meta(server), body).status_code == 400
    assert api_as(member).put(_meta(server), body).status_code == 400


def test_more_items_than_the_limit_is_403_over_limit(member, server, api_as, settings):
    settings.KUMO_DEFAULT_QUOTAS = {"metadata_items": 3}
    api = api_as(member)
    assert api.post(_meta(server), {"metadata": {"key3": "v"}}).status_code == 200  # 3 of 3
    too_many = api.post(_meta(server), {"metadata": {"key4": "v"}})
    assert too_many.status_code == 403
    assert too_many.json()["forbidden"]["code"] == 403
    assert "metadata_items" in too_many.json()["forbidden"]["message"]
    assert api.put(_meta(server, "key4"), {"meta": {"key4": "v"}}).status_code == 403
    replace = {f"k{i}": "v" for i in range(4)}
    assert api.put(_meta(server), {"metadata": replace}).status_code == 403
    assert len(Instance.objects.get(pk=server.pk).metadata) == 3
    # Replacing an existing key does not add an item.
    assert api.put(_meta(server, "key1"), {"meta": {"key1": "new"}}).status_code == 200


def test_the_default_limit_is_128_items(member, server, api_as, settings):
    del settings.KUMO_DEFAULT_QUOTAS
    api = api_as(member)
    assert api.put(_meta(server), {"metadata": {f"k{i}": "v" for i in range(128)}}).status_code == 200
    assert api.put(_meta(server), {"metadata": {f"k{i}": "v" for i in range(129)}}).status_code == 403


def test_a_limit_of_minus_one_means_no_limit(member, server, api_as, settings):
    settings.KUMO_DEFAULT_QUOTAS = {"metadata_items": -1}
    items = {f"k{i}": "v" for i in range(200)}
    assert api_as(member).put(_meta(server), {"metadata": items}).status_code == 200


def test_a_projects_own_metadata_quota_overrides_the_default(member, server, api_as):
    Quota.objects.create(project=member.project, resource="metadata_items", hard_limit=2)
    response = api_as(member).post(_meta(server), {"metadata": {"key3": "v"}})
    assert response.status_code == 403
    assert "forbidden" in response.json()


def test_reader_cannot_change_metadata(reader, server, api_as):
    api = api_as(reader)
    responses = [
        api.post(_meta(server), {"metadata": {"a": "b"}}),
        api.put(_meta(server), {"metadata": {"a": "b"}}),
        api.put(_meta(server, "a"), {"meta": {"a": "b"}}),
        api.delete(_meta(server, "key1")),
    ]
    assert [r.status_code for r in responses] == [403] * 4
    assert all("forbidden" in r.json() for r in responses)
    assert Instance.objects.get(pk=server.pk).metadata == {"key1": "value1", "key2": "value2"}


def test_another_projects_server_is_404_for_every_metadata_call(other, server, api_as):
    api = api_as(other)
    responses = [
        api.get(_meta(server)),
        api.post(_meta(server), {"metadata": {"a": "b"}}),
        api.put(_meta(server), {"metadata": {"a": "b"}}),
        api.get(_meta(server, "key1")),
        api.put(_meta(server, "key1"), {"meta": {"key1": "b"}}),
        api.delete(_meta(server, "key1")),
        api.get(f"{V}/servers/{uuid.uuid4()}/metadata"),
    ]
    assert [r.status_code for r in responses] == [404] * 7
    assert Instance.objects.get(pk=server.pk).metadata == {"key1": "value1", "key2": "value2"}


def test_a_locked_server_refuses_a_members_metadata_changes(member, admin, api_as):
    server = make_server(member, metadata={"key1": "value1"}, locked=True)
    api = api_as(member)
    responses = [
        api.post(_meta(server), {"metadata": {"a": "b"}}),
        api.put(_meta(server), {"metadata": {"a": "b"}}),
        api.put(_meta(server, "a"), {"meta": {"a": "b"}}),
        api.delete(_meta(server, "key1")),
    ]
    assert [r.status_code for r in responses] == [409] * 4
    assert responses[0].json()["conflictingRequest"]["message"] == f"Instance {server.uuid} is locked"
    assert api.get(_meta(server)).json() == {"metadata": {"key1": "value1"}}  # reading is fine
    assert api_as(admin).post(_meta(server), {"metadata": {"a": "b"}}).status_code == 200


@pytest.mark.parametrize(
    ("vm_state", "task_state"),
    [("building", "scheduling"), ("error", None), ("active", "deleting")],
)
def test_metadata_cannot_change_until_the_server_has_settled(member, api_as, vm_state, task_state):
    server = make_server(member, vm_state=vm_state, task_state=task_state, metadata={"k": "v"})
    api = api_as(member)
    response = api.post(_meta(server), {"metadata": {"a": "b"}})
    assert response.status_code == 409
    assert vm_state in response.json()["conflictingRequest"]["message"]
    assert api.delete(_meta(server, "k")).status_code == 409
    assert api.get(_meta(server)).json() == {"metadata": {"k": "v"}}


@pytest.mark.parametrize("vm_state", ["active", "stopped", "paused", "suspended"])
def test_metadata_changes_in_every_settled_state(member, api_as, vm_state):
    server = make_server(member, vm_state=vm_state)
    assert api_as(member).post(_meta(server), {"metadata": {"a": "b"}}).status_code == 200


# --- /ips


def test_ips_lists_addresses_without_the_extension_keys(reader, member, api_as):
    server = make_server(member)
    give_address(server, "private", "10.0.0.10")
    response = api_as(reader).get(f"{V}/servers/{server.uuid}/ips")
    assert response.status_code == 200
    assert response.json() == {"addresses": {"private": [{"version": 4, "addr": "10.0.0.10"}]}}


def test_ips_of_a_server_without_ports_is_empty(member, api_as):
    server = make_server(member)
    assert api_as(member).get(f"{V}/servers/{server.uuid}/ips").json() == {"addresses": {}}


def test_ips_of_one_network_answers_that_network_only(member, api_as):
    server = make_server(member)
    give_address(server, "private", "10.0.0.10")
    response = api_as(member).get(f"{V}/servers/{server.uuid}/ips/private")
    assert response.status_code == 200
    assert response.json() == {"private": [{"version": 4, "addr": "10.0.0.10"}]}


def test_ips_of_a_network_the_server_is_not_on_is_404(member, api_as):
    server = make_server(member)
    give_address(server, "private", "10.0.0.10")
    response = api_as(member).get(f"{V}/servers/{server.uuid}/ips/public")
    assert response.status_code == 404
    assert "itemNotFound" in response.json()


def test_ips_of_another_projects_server_is_404(other, member, api_as):
    server = make_server(member)
    give_address(server)
    assert api_as(other).get(f"{V}/servers/{server.uuid}/ips").status_code == 404
    assert api_as(other).get(f"{V}/servers/{server.uuid}/ips/private").status_code == 404
