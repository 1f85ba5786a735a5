"""/os-server-groups through the API, and joining a group with a scheduler hint at boot."""

from __future__ import annotations

import uuid

import pytest

from cloud import errors
from cloud.api.compute.server_groups import group_body
from cloud.api.microversion import APIVersion
from cloud.compute.models import Instance, ServerGroup, ServerGroupMember
from tests.factories import boot

V = "/compute/v2.1"
KEYS_21 = {"id", "name", "policies", "members", "metadata"}


def _create(api, name="g1", policies=("anti-affinity",), version=None):
    body = {"server_group": {"name": name, "policies": list(policies)}}
    return api.post(f"{V}/os-server-groups", body, version=version)


# --- create and shapes


def test_create_at_2_1_answers_200_with_exactly_the_2_1_keys(member, api_as):
    response = _create(api_as(member))
    assert response.status_code == 200, response.content
    group = response.json()["server_group"]
    assert set(group) == KEYS_21
    assert (group["name"], group["policies"], group["members"], group["metadata"]) == (
        "g1", ["anti-affinity"], [], {},
    )
    stored = ServerGroup.objects.get(pk=group["id"])
    assert (stored.policy, stored.project_id, stored.user_id) == (
        "anti-affinity", member.project.id, member.user.id,
    )


def test_from_2_13_the_group_says_whose_it_is(member, api_as):
    group = _create(api_as(member), version="2.13").json()["server_group"]
    assert set(group) == KEYS_21 | {"project_id", "user_id"}
    assert (group["project_id"], group["user_id"]) == (member.project.id, member.user.id)


def test_soft_policies_need_2_15(member, api_as):
    api = api_as(member)
    assert _create(api, policies=["soft-anti-affinity"], version="2.14").status_code == 400
    response = _create(api, policies=["soft-anti-affinity"], version="2.15")
    assert response.status_code == 200
    assert response.json()["server_group"]["policies"] == ["soft-anti-affinity"]


@pytest.mark.parametrize(
    "body",
    [
        {"server_group": {"name": "g", "policies": ["affinity", "anti-affinity"]}},
        {"server_group": {"name": "g", "policies": []}},
        {"server_group": {"name": "g", "policies": ["sideways"]}},
        {"server_group": {"name": "g", "policies": "affinity"}},
        {"server_group": {"policies": ["affinity"]}},
        {"server_group": {"name": "", "policies": ["affinity"]}},
        {"server_group": {"name": " padded ", "policies": ["affinity"]}},
        {"server_group": {"name": "g", "policies": ["affinity"], "metadata": {}}},
        {"server_group": {"name": "g", "policy": "affinity"}},
        {"name": "g", "policies": ["affinity"]},
    ],
)
def test_malformed_create_bodies_are_400_and_store_nothing(member, api_as, body):
    response = api_as(member).post(f"{V}/os-server-groups", body, version="2.15")
    assert response.status_code == 400, response.content
    assert response.json()["badRequest"]["code"] == 400
    assert not ServerGroup.objects.exists()


def test_a_reader_may_look_but_not_create_or_delete(member, reader, api_as):
    group_id = _create(api_as(member)).json()["server_group"]["id"]
    api = api_as(reader)
    assert _create(api).status_code == 403
    assert api.get(f"{V}/os-server-groups/{group_id}").status_code == 200
    assert len(api.get(f"{V}/os-server-groups").json()["server_groups"]) == 1
    assert api.delete(f"{V}/os-server-groups/{group_id}").status_code == 403


def test_create_counts_against_the_server_groups_quota(member, api_as, monkeypatch):
    asked = []

    def over_limit(project_id, deltas):
        asked.append((project_id, deltas))
        raise errors.OverLimit("Quota exceeded, too many server groups.")

    monkeypatch.setattr("cloud.compute.server_groups.quotas.reserve", over_limit)
    response = _create(api_as(member))
    assert response.status_code == 403
    assert "too many server groups" in response.json()["forbidden"]["message"]
    assert asked == [(member.project.id, {"server_groups": 1})]
    assert not ServerGroup.objects.exists()


def test_the_2_64_shape_has_policy_and_rules_instead_of_policies_and_metadata(member, api_as):
    _create(api_as(member))
    group = ServerGroup.objects.get()
    group.rules = {"max_server_per_host": 2}
    body = group_body(group, ["m1"], APIVersion(2, 64))
    assert body == {
        "id": str(group.uuid), "name": "g1", "policy": "anti-affinity",
        "rules": {"max_server_per_host": 2}, "members": ["m1"],
        "project_id": member.project.id, "user_id": member.user.id,
    }


# --- list, show, delete


def test_list_shows_only_the_projects_own_groups(member, other, api_as):
    _create(api_as(member), name="mine")
    _create(api_as(other), name="theirs")
    listed = api_as(member).get(f"{V}/os-server-groups").json()["server_groups"]
    assert [g["name"] for g in listed] == ["mine"]
    assert set(listed[0]) == KEYS_21


def test_an_admin_lists_every_project_with_all_projects_and_others_cannot(admin, member, other,
                                                                          api_as):
    _create(api_as(member), name="mine")
    _create(api_as(other), name="theirs")
    everyone = api_as(admin).get(f"{V}/os-server-groups?all_projects=True").json()
    assert sorted(g["name"] for g in everyone["server_groups"]) == ["mine", "theirs"]
    own = api_as(admin).get(f"{V}/os-server-groups").json()["server_groups"]
    assert [g["name"] for g in own] == ["mine"]
    # A member asking for all projects just gets their own, as in Nova.
    asked = api_as(other).get(f"{V}/os-server-groups?all_projects=True").json()
    assert [g["name"] for g in asked["server_groups"]] == ["theirs"]


def test_list_pages_with_limit_and_offset(member, api_as):
    api = api_as(member)
    for name in ("a", "b", "c"):
        _create(api, name=name)
    page = api.get(f"{V}/os-server-groups?limit=2&offset=1").json()["server_groups"]
    assert [g["name"] for g in page] == ["b", "c"]
    assert api.get(f"{V}/os-server-groups?limit=0").json()["server_groups"] == []


@pytest.mark.parametrize("query", ["limit=-1", "limit=abc", "offset=-1", "offset=x"])
def test_bad_paging_parameters_are_400(member, api_as, query):
    assert api_as(member).get(f"{V}/os-server-groups?{query}").status_code == 400


def test_show_and_delete_of_a_foreign_group_answer_404_like_a_missing_one(member, other, api_as):
    group_id = _create(api_as(other)).json()["server_group"]["id"]
    api = api_as(member)
    for path in (group_id, str(uuid.uuid4()), "not-a-uuid"):
        response = api.get(f"{V}/os-server-groups/{path}")
        assert response.status_code == 404
        assert "itemNotFound" in response.json()
        assert api.delete(f"{V}/os-server-groups/{path}").status_code == 404
    assert ServerGroup.objects.filter(pk=group_id).exists()


def test_delete_answers_204_and_the_group_is_gone(member, api_as):
    api = api_as(member)
    group_id = _create(api).json()["server_group"]["id"]
    assert api.delete(f"{V}/os-server-groups/{group_id}").status_code == 204
    assert api.get(f"{V}/os-server-groups/{group_id}").status_code == 404


def test_an_admin_may_show_and_delete_another_projects_group(admin, other, api_as):
    group_id = _create(api_as(other)).json()["server_group"]["id"]
    assert api_as(admin).get(f"{V}/os-server-groups/{group_id}").status_code == 200
    assert api_as(admin).delete(f"{V}/os-server-groups/{group_id}").status_code == 204


# --- joining at boot


@pytest.mark.parametrize("hint_key", ["os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"])
def test_a_server_booted_with_the_group_hint_is_listed_as_a_member(member, api_as, tiny, image,
                                                                   hint_key):
    api = api_as(member)
    group_id = _create(api).json()["server_group"]["id"]
    response = boot(api, image, {"group": group_id}, hint_key=hint_key)
    assert response.status_code == 202, response.content
    server_id = response.json()["server"]["id"]
    shown = api.get(f"{V}/os-server-groups/{group_id}").json()["server_group"]
    assert shown["members"] == [server_id]
    listed = api.get(f"{V}/os-server-groups").json()["server_groups"]
    assert listed[0]["members"] == [server_id]


def test_every_server_of_a_multi_create_joins_the_group(member, api_as, tiny, image):
    api = api_as(member)
    group_id = _create(api).json()["server_group"]["id"]
    assert boot(api, image, {"group": group_id}, min_count=3, max_count=3).status_code == 202
    assert ServerGroupMember.objects.filter(group_id=group_id).count() == 3


def test_a_deleted_server_is_no_longer_a_member(member, api_as, tiny, image):
    api = api_as(member)
    group_id = _create(api).json()["server_group"]["id"]
    server_id = boot(api, image, {"group": group_id}).json()["server"]["id"]
    assert api.delete(f"{V}/servers/{server_id}").status_code == 204
    assert Instance.objects.get(pk=server_id).deleted
    shown = api.get(f"{V}/os-server-groups/{group_id}").json()["server_group"]
    assert shown["members"] == []


@pytest.mark.parametrize("hint", [str(uuid.uuid4()), "not-a-uuid", 5, ["x"]])
def test_booting_into_a_missing_or_malformed_group_is_400_and_creates_nothing(member, api_as, tiny,
                                                                             image, hint):
    response = boot(api_as(member), image, {"group": hint})
    assert response.status_code == 400, response.content
    assert not Instance.objects.exists()


def test_booting_into_another_projects_group_is_400_like_a_missing_one(member, other, api_as,
                                                                       tiny, image):
    foreign = _create(api_as(other)).json()["server_group"]["id"]
    response = boot(api_as(member), image, {"group": foreign})
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == (
        f"Instance group {foreign} could not be found."
    )
    assert not Instance.objects.exists()


def test_a_boot_without_a_group_hint_joins_no_group(member, api_as, tiny, image):
    assert boot(api_as(member), image, {}).status_code == 202
    assert not ServerGroupMember.objects.exists()
