"""GET /limits: absolute limits next to current usage, with the keys of each microversion."""

from __future__ import annotations

import pytest

from cloud.compute.models import Instance, ServerGroup
from cloud.identity.models import Quota

V = "/compute/v2.1"
CORE_KEYS = {
    "maxTotalInstances", "maxTotalCores", "maxTotalRAMSize", "maxServerMeta", "maxTotalKeypairs",
    "maxServerGroups", "maxServerGroupMembers", "totalInstancesUsed", "totalCoresUsed",
    "totalRAMUsed", "totalServerGroupsUsed",
}
NETWORK_KEYS = {
    "maxTotalFloatingIps", "maxSecurityGroups", "maxSecurityGroupRules", "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed",
}
PERSONALITY_KEYS = {"maxPersonality", "maxPersonalitySize"}
KEYS_21 = CORE_KEYS | NETWORK_KEYS | PERSONALITY_KEYS | {"maxImageMeta"}


def _instance(persona, *, vcpus=1, memory_mb=512, deleted=False) -> Instance:
    return Instance.objects.create(
        display_name="vm", project=persona.project, user=persona.user,
        vcpus=vcpus, memory_mb=memory_mb, root_gb=1, deleted=deleted,
    )


def _absolute(api, query: str = "", version: str | None = None) -> dict:
    response = api.get(f"{V}/limits{query}", version=version)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"limits"}
    assert body["limits"]["rate"] == []
    return body["limits"]["absolute"]


@pytest.mark.parametrize(
    "version, keys",
    [
        ("2.1", KEYS_21),
        ("2.35", KEYS_21),
        ("2.36", CORE_KEYS | PERSONALITY_KEYS | {"maxImageMeta"}),
        ("2.38", CORE_KEYS | PERSONALITY_KEYS | {"maxImageMeta"}),
        ("2.39", CORE_KEYS | PERSONALITY_KEYS),
        ("2.57", CORE_KEYS),
        ("2.60", CORE_KEYS),
    ],
)
def test_the_absolute_keys_follow_the_microversion(member, api_as, version, keys):
    absolute = _absolute(api_as(member), version=version)
    assert set(absolute) == keys
    assert all(type(v) is int for v in absolute.values())


def test_a_fresh_project_sees_the_defaults_and_no_usage(member, api_as):
    absolute = _absolute(api_as(member))
    assert absolute == {
        "maxTotalInstances": 10, "maxTotalCores": 20, "maxTotalRAMSize": 51200,
        "maxServerMeta": 128, "maxImageMeta": 128, "maxTotalKeypairs": 100,
        "maxServerGroups": 10, "maxServerGroupMembers": 10,
        "maxTotalFloatingIps": 10, "maxSecurityGroups": 10, "maxSecurityGroupRules": 20,
        "maxPersonality": 5, "maxPersonalitySize": 10240,
        "totalInstancesUsed": 0, "totalCoresUsed": 0, "totalRAMUsed": 0,
        "totalServerGroupsUsed": 0, "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
    }


def test_usage_is_what_the_projects_live_rows_add_up_to(member, other, api_as):
    _instance(member, vcpus=2, memory_mb=1024)
    _instance(member, vcpus=3, memory_mb=2048)
    _instance(member, vcpus=16, memory_mb=9999, deleted=True)
    _instance(other, vcpus=7, memory_mb=7)
    ServerGroup.objects.create(name="g", project=member.project, user=member.user, policy="affinity")
    absolute = _absolute(api_as(member))
    live = Instance.objects.filter(project=member.project, deleted=False)
    assert absolute["totalInstancesUsed"] == live.count() == 2
    assert absolute["totalCoresUsed"] == 5
    assert absolute["totalRAMUsed"] == 3072
    assert absolute["totalServerGroupsUsed"] == 1


def test_a_projects_own_limits_show_including_unlimited(member, api_as):
    Quota.objects.create(project=member.project, resource="cores", hard_limit=-1)
    Quota.objects.create(project=member.project, resource="metadata_items", hard_limit=7)
    absolute = _absolute(api_as(member))
    assert (absolute["maxTotalCores"], absolute["maxServerMeta"], absolute["maxImageMeta"]) == (
        -1, 7, 7,
    )


@pytest.mark.parametrize("query", ["?reserved=False", "?reserved=1", "?reserved="])
def test_reserved_is_accepted_and_changes_nothing(member, api_as, query):
    _instance(member)
    assert _absolute(api_as(member), query) == _absolute(api_as(member))


def test_a_reader_may_read_limits(reader, api_as):
    assert _absolute(api_as(reader))["maxTotalInstances"] == 10


def test_an_admin_reads_another_projects_limits_with_tenant_id(admin, other, api_as):
    _instance(other, vcpus=3)
    Quota.objects.create(project=other.project, resource="instances", hard_limit=4)
    absolute = _absolute(api_as(admin), f"?tenant_id={other.project.id}")
    assert (absolute["maxTotalInstances"], absolute["totalCoresUsed"]) == (4, 3)
    assert _absolute(api_as(admin))["totalCoresUsed"] == 0  # without it, the admin's own


def test_a_member_naming_another_project_is_403_but_their_own_is_fine(member, other, api_as):
    response = api_as(member).get(f"{V}/limits?tenant_id={other.project.id}")
    assert response.status_code == 403
    assert set(response.json()) == {"forbidden"}
    assert _absolute(api_as(member), f"?tenant_id={member.project.id}")["maxTotalInstances"] == 10


def test_without_a_token_limits_are_401(api_as):
    assert api_as(None).get(f"{V}/limits").status_code == 401
