"""/os-aggregates (admins only): shapes per microversion, host membership and zone rules."""

from __future__ import annotations

import pytest

from cloud.compute.models import Aggregate, AggregateHost
from tests.factories import make_node

V = "/compute/v2.1"
CREATE_KEYS = {"id", "name", "availability_zone", "created_at", "updated_at", "deleted",
               "deleted_at"}
FULL_KEYS = CREATE_KEYS | {"hosts", "metadata"}


@pytest.fixture
def api(admin, api_as):
    return api_as(admin)


@pytest.fixture
def hosts(db):
    return [make_node(name).host for name in ("c1", "c2", "c3")]


def create(api, name="agg1", zone=None, version=None) -> dict:
    body = {"aggregate": {"name": name}}
    if zone is not None:
        body["aggregate"]["availability_zone"] = zone
    response = api.post(f"{V}/os-aggregates", body, version=version)
    assert response.status_code == 200, response.content
    return response.json()["aggregate"]


def action(api, aggregate_id, body, version=None):
    return api.post(f"{V}/os-aggregates/{aggregate_id}/action", body, version=version)


def add_host(api, aggregate_id, host):
    return action(api, aggregate_id, {"add_host": {"host": host}})


# --- shapes


def test_create_answers_200_without_hosts_or_metadata(api):
    body = create(api, zone="az1")
    assert set(body) == CREATE_KEYS
    assert isinstance(body["id"], int)
    assert (body["name"], body["availability_zone"], body["deleted"], body["deleted_at"]) == (
        "agg1", "az1", False, None,
    )
    assert body["updated_at"] is None


def test_from_2_41_aggregates_carry_their_uuid(api):
    body = create(api, version="2.41")
    assert set(body) == CREATE_KEYS | {"uuid"}
    assert body["uuid"] == str(Aggregate.objects.get().uuid)
    shown = api.get(f"{V}/os-aggregates/{body['id']}", version="2.41").json()["aggregate"]
    assert set(shown) == FULL_KEYS | {"uuid"}


def test_show_and_list_have_hosts_and_metadata_and_the_zone_appears_in_metadata(api, hosts):
    agg = create(api, zone="az1")
    add_host(api, agg["id"], "c2")
    shown = api.get(f"{V}/os-aggregates/{agg['id']}").json()["aggregate"]
    assert set(shown) == FULL_KEYS
    assert (shown["hosts"], shown["metadata"]) == (["c2"], {"availability_zone": "az1"})
    listed = api.get(f"{V}/os-aggregates").json()["aggregates"]
    assert [a["id"] for a in listed] == [agg["id"]]
    assert set(listed[0]) == FULL_KEYS


# --- who and what


def test_non_admins_are_refused_with_403(member, reader, api_as, api):
    agg = create(api)
    for persona in (member, reader):
        other = api_as(persona)
        assert other.get(f"{V}/os-aggregates").status_code == 403
        assert other.post(f"{V}/os-aggregates", {"aggregate": {"name": "x"}}).status_code == 403
        assert other.get(f"{V}/os-aggregates/{agg['id']}").status_code == 403
        assert other.put(f"{V}/os-aggregates/{agg['id']}", {"aggregate": {"name": "y"}}
                         ).status_code == 403
        assert other.delete(f"{V}/os-aggregates/{agg['id']}").status_code == 403
        response = action(other, agg["id"], {"add_host": {"host": "c1"}})
        assert response.status_code == 403
        assert "forbidden" in response.json()
        assert action(other, agg["id"], {"bogus": {}}).status_code == 403
    assert Aggregate.objects.get().name == "agg1"


@pytest.mark.parametrize("bad_id", ["999999", "abc", "-1", "1.5", "99999999999999999999999"])
def test_a_bad_id_is_404_everywhere(api, bad_id):
    assert api.get(f"{V}/os-aggregates/{bad_id}").status_code == 404
    assert api.put(f"{V}/os-aggregates/{bad_id}", {"aggregate": {"name": "y"}}).status_code == 404
    assert api.delete(f"{V}/os-aggregates/{bad_id}").status_code == 404
    response = action(api, bad_id, {"set_metadata": {"metadata": {"a": "b"}}})
    assert response.status_code == 404
    assert "itemNotFound" in response.json()


def test_a_duplicate_name_is_409_on_create_and_on_rename(api):
    create(api, name="one")
    two = create(api, name="two")
    response = api.post(f"{V}/os-aggregates", {"aggregate": {"name": "one"}})
    assert response.status_code == 409
    assert "conflictingRequest" in response.json()
    assert api.put(f"{V}/os-aggregates/{two['id']}", {"aggregate": {"name": "one"}}
                   ).status_code == 409
    assert Aggregate.objects.filter(name="one").count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"aggregate": {}},
        {"aggregate": {"name": ""}},
        {"aggregate": {"name": "x" * 256}},
        {"aggregate": {"name": " padded"}},
        {"aggregate": {"name": "ok", "availability_zone": ""}},
        {"aggregate": {"name": "ok", "availability_zone": "a:b"}},
        {"aggregate": {"name": "ok", "availability_zone": "internal"}},
        {"aggregate": {"name": "ok", "extra": 1}},
        {"name": "ok"},
    ],
)
def test_malformed_creates_are_400(api, body):
    response = api.post(f"{V}/os-aggregates", body)
    assert response.status_code == 400, response.content
    assert not Aggregate.objects.exists()


# --- update and delete


def test_update_renames_and_rezones_and_stamps_updated_at(api):
    agg = create(api)
    response = api.put(f"{V}/os-aggregates/{agg['id']}",
                       {"aggregate": {"name": "renamed", "availability_zone": "az9"}})
    assert response.status_code == 200, response.content
    body = response.json()["aggregate"]
    assert set(body) == FULL_KEYS
    assert (body["name"], body["availability_zone"]) == ("renamed", "az9")
    assert body["updated_at"] is not None
    assert api.put(f"{V}/os-aggregates/{agg['id']}", {"aggregate": {}}).status_code == 400


def test_delete_answers_200_and_refuses_an_aggregate_that_still_has_hosts(api, hosts):
    agg = create(api)
    add_host(api, agg["id"], "c1")
    response = api.delete(f"{V}/os-aggregates/{agg['id']}")
    assert response.status_code == 400
    assert "badRequest" in response.json()
    assert action(api, agg["id"], {"remove_host": {"host": "c1"}}).status_code == 200
    assert api.delete(f"{V}/os-aggregates/{agg['id']}").status_code == 200
    assert not Aggregate.objects.exists()


# --- hosts


def test_add_and_remove_host_answer_the_aggregate(api, hosts):
    agg = create(api)
    response = add_host(api, agg["id"], "c1")
    assert response.status_code == 200, response.content
    assert response.json()["aggregate"]["hosts"] == ["c1"]
    add_host(api, agg["id"], "c3")
    body = action(api, agg["id"], {"remove_host": {"host": "c1"}}).json()["aggregate"]
    assert body["hosts"] == ["c3"]


def test_adding_an_unknown_host_is_404(api, hosts):
    agg = create(api)
    response = add_host(api, agg["id"], "nowhere")
    assert response.status_code == 404
    assert not AggregateHost.objects.exists()


def test_adding_a_host_twice_is_409_and_removing_an_absent_one_is_404(api, hosts):
    agg = create(api)
    add_host(api, agg["id"], "c1")
    assert add_host(api, agg["id"], "c1").status_code == 409
    assert action(api, agg["id"], {"remove_host": {"host": "c2"}}).status_code == 404


def test_a_host_may_be_in_several_aggregates_but_only_one_zone(api, hosts):
    az1 = create(api, name="in-az1", zone="az1")
    az2 = create(api, name="in-az2", zone="az2")
    also_az1 = create(api, name="also-az1", zone="az1")
    unzoned = create(api, name="tags")
    assert add_host(api, az1["id"], "c3").status_code == 200
    assert add_host(api, unzoned["id"], "c3").status_code == 200
    assert add_host(api, also_az1["id"], "c3").status_code == 200

    response = add_host(api, az2["id"], "c3")

    assert response.status_code == 409
    assert "conflictingRequest" in response.json()
    assert not AggregateHost.objects.filter(aggregate_id=az2["id"]).exists()


def test_giving_an_aggregate_a_zone_that_would_split_a_host_is_refused(api, hosts):
    az1 = create(api, name="in-az1", zone="az1")
    plain = create(api, name="plain")
    add_host(api, az1["id"], "c3")
    add_host(api, plain["id"], "c3")

    renamed = api.put(f"{V}/os-aggregates/{plain['id']}", {"aggregate": {"availability_zone": "az2"}})
    via_metadata = action(api, plain["id"],
                          {"set_metadata": {"metadata": {"availability_zone": "az2"}}})

    assert renamed.status_code == via_metadata.status_code == 400
    assert Aggregate.objects.get(pk=plain["id"]).availability_zone is None
    same_zone = api.put(f"{V}/os-aggregates/{plain['id']}",
                        {"aggregate": {"availability_zone": "az1"}})
    assert same_zone.status_code == 200


# --- metadata


def test_set_metadata_merges_deletes_with_null_and_sets_the_zone(api):
    agg = create(api)
    first = action(api, agg["id"], {"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}})
    assert first.status_code == 200, first.content
    assert first.json()["aggregate"]["metadata"] == {"ssd": "true", "gpu": "no"}

    body = action(api, agg["id"], {"set_metadata": {"metadata": {
        "gpu": None, "missing": None, "availability_zone": "az7"}}}).json()["aggregate"]

    assert body["metadata"] == {"ssd": "true", "availability_zone": "az7"}
    assert body["availability_zone"] == "az7"
    cleared = action(api, agg["id"], {"set_metadata": {"metadata": {"availability_zone": None}}})
    assert cleared.json()["aggregate"]["availability_zone"] is None
    assert cleared.json()["aggregate"]["metadata"] == {"ssd": "true"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"bogus": {}},
        {"add_host": {"host": "c1"}, "remove_host": {"host": "c1"}},
        {"add_host": {}},
        {"add_host": {"host": ""}},
        {"set_metadata": {"metadata": {"": "x"}}},
        {"set_metadata": {"metadata": {"k": 5}}},
        {"set_metadata": {"metadata": {"k": "v" * 256}}},
        {"set_metadata": {"metadata": {"availability_zone": ""}}},
        {"set_metadata": {}},
    ],
)
def test_malformed_actions_are_400(api, hosts, body):
    agg = create(api)
    response = action(api, agg["id"], body)
    assert response.status_code == 400, response.content
    assert "badRequest" in response.json()
