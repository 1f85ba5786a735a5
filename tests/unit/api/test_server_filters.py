"""Every filter Nova documents on GET /servers and /servers/detail, each fed a matching and a
non-matching server; who may use which filter at which microversion; unknown parameters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cloud.compute.models import Instance
from tests.factories import give_address, make_server
from tests.personas import make_persona

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"
T0 = timezone.now() - timedelta(days=3)


def _pair(owner, match: dict, other: dict):
    return make_server(owner, "match", **match), make_server(owner, "other", **other)


def _names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {s["name"] for s in response.json()["servers"]}


# (query, fields of the server that matches, fields of the one that does not, microversion)
CASES = [
    ("name=^mat", {}, {}, "2.1"),
    ("status=SHUTOFF", {"vm_state": "stopped"}, {}, "2.1"),
    ("status=REBOOT", {"task_state": "rebooting"}, {}, "2.1"),
    ("image=11111111-1111-1111-1111-111111111111",
     {"image_ref": "11111111-1111-1111-1111-111111111111"}, {"image_ref": "2"}, "2.1"),
    ("flavor=42", {"flavor_snapshot": {"id": "42"}}, {}, "2.1"),
    ("host=compute9", {"host": "compute9"}, {}, "2.1"),
    ("node=^n-9$", {"node": "n-9"}, {"node": "n-1"}, "2.1"),
    ("hostname=web", {"hostname": "web-1"}, {"hostname": "db-1"}, "2.1"),
    ("description=blue", {"description": "a blue one"}, {"description": "red"}, "2.19"),
    ("key_name=^k1$", {"key_name": "k1"}, {"key_name": "k2"}, "2.1"),
    ("availability_zone=^nova$", {"host": "h-in-nova"}, {"host": None, "availability_zone": "az2"},
     "2.1"),
    ("config_drive=True", {"config_drive": True}, {"config_drive": False}, "2.1"),
    ("power_state=4", {"power_state": "shutdown"}, {"power_state": "running"}, "2.1"),
    ("task_state=powering-off", {"task_state": "powering-off"}, {}, "2.1"),
    ("vm_state=paused", {"vm_state": "paused"}, {}, "2.1"),
    ("progress=^50$", {"progress": 50}, {"progress": 5}, "2.1"),
    ("locked=true", {"locked": True}, {"locked": False}, "2.73"),
    ("locked=0", {"locked": False}, {"locked": True}, "2.73"),
    ("reservation_id=r-aa", {"reservation_id": "r-aa"}, {"reservation_id": "r-bb"}, "2.1"),
    ("access_ip_v4=10.9.9.9", {"access_ip_v4": "10.9.9.9"}, {}, "2.1"),
    ("access_ip_v6=fd00::9", {"access_ip_v6": "fd00::9"}, {}, "2.1"),
    ("launch_index=3", {"launch_index": 3}, {}, "2.1"),
    ("launched_at=2026-01-02", {"launched_at": T0.replace(year=2026, month=1, day=2)},
     {"launched_at": T0.replace(year=2026, month=1, day=3)}, "2.1"),
    ("terminated_at=2026-01-04",
     {"terminated_at": T0.replace(year=2026, month=1, day=4), "deleted": True},
     {"terminated_at": T0.replace(year=2026, month=1, day=5), "deleted": True}, "2.1"),
]


@pytest.mark.parametrize("query, match, other, version", CASES, ids=[c[0] for c in CASES])
def test_each_filter_returns_the_matching_server_only(admin, member, api_as, query, match, other,
                                                      version):
    _pair(member, match, other)
    if "terminated_at" in query:
        query += "&deleted=true"
    assert _names(api_as(admin).get(f"{V}/servers?{query}", version=version)) == {"match"}
    assert _names(api_as(admin).get(f"{V}/servers/detail?{query}", version=version)) == {"match"}


def test_created_at_matches_the_text_of_the_creation_time(admin, member, api_as):
    first, _ = _pair(member, {}, {})
    Instance.objects.filter(pk=first.pk).update(created_at=T0.replace(year=2025, month=7, day=1))
    assert _names(api_as(admin).get(f"{V}/servers?created_at=2025-07-01")) == {"match"}


def test_ip_and_ip6_match_the_server_s_fixed_addresses(member, api_as):
    first, second = _pair(member, {}, {})
    give_address(first, addr="10.0.0.10")
    give_address(second, addr="10.0.0.20")
    api = api_as(member)
    assert _names(api.get(f"{V}/servers?ip=10.0.0.10")) == {"match"}
    assert _names(api.get(f"{V}/servers?ip=10.0.0.30")) == set()
    give_address(second, network_name="v6", addr="fd00::20")
    assert _names(api.get(f"{V}/servers?ip6=fd00::20", version="2.5")) == {"other"}
    # ip6 is an admin's filter below 2.5: a member's is dropped, so everything is listed
    assert _names(api.get(f"{V}/servers?ip6=fd00::20", version="2.4")) == {"match", "other"}


def test_all_projects_with_a_user_lists_only_that_user_s_servers(admin, member, other, api_as):
    make_server(member, "bobs")
    make_server(other, "mallorys")
    dave = make_persona("dave", "alpha", ["member"])
    make_server(dave, "daves")
    api = api_as(admin)
    listed = _names(api.get(f"{V}/servers/detail?all_tenants=1&user_id={other.user.pk}"))
    assert listed == {"mallorys"}
    assert _names(api.get(f"{V}/servers?all_tenants=1")) == {"bobs", "mallorys", "daves"}
    assert _names(api.get(f"{V}/servers?all_tenants=1&project_id={other.project.pk}")) == {
        "mallorys"}
    # Without all_tenants the project is the caller's, whatever project_id says.
    assert _names(api.get(f"{V}/servers?project_id={other.project.pk}")) == {"bobs", "daves"}


def test_deleted_servers_are_listed_to_admins_who_ask_only(admin, member, api_as):
    _pair(member, {"deleted": True, "vm_state": "deleted"}, {})
    assert _names(api_as(admin).get(f"{V}/servers?deleted=true")) == {"match"}
    assert _names(api_as(admin).get(f"{V}/servers")) == {"other"}
    assert _names(api_as(member).get(f"{V}/servers?deleted=true")) == {"other"}
    assert api_as(member).get(f"{V}/servers?vm_state=deleted", version="2.83").status_code == 403


def test_changes_since_and_before_bound_the_last_change(member, api_as):
    first, _ = _pair(member, {}, {})
    Instance.objects.filter(pk=first.pk).update(updated_at=T0)
    api = api_as(member)
    later = (T0 + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _names(api.get(f"{V}/servers?changes-since={later}")) == {"other"}
    assert _names(api.get(f"{V}/servers?changes-before={later}", version="2.66")) == {"match"}
    earlier = (T0 - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    both = api.get(f"{V}/servers?changes-since={later}&changes-before={earlier}", version="2.66")
    assert both.status_code == 400
    # Below 2.66 a well-formed changes-before filters nothing, a malformed one is still refused.
    assert _names(api.get(f"{V}/servers?changes-before={later}", version="2.65")) == {
        "match", "other"}
    assert api.get(f"{V}/servers?changes-before=yesterday", version="2.65").status_code == 400
    # deleted takes any value, as Nova: an unreadable one lists the live servers.
    assert _names(api.get(f"{V}/servers?deleted=%17junk")) == {"match", "other"}


@pytest.mark.parametrize("query, match, other", [
    ("user_id={dave}", {"user": "dave"}, {}),
    ("vm_state=stopped", {"vm_state": "stopped"}, {}),
    ("key_name=k1", {"key_name": "k1"}, {}),
    ("power_state=4", {"power_state": "shutdown"}, {}),
])
def test_state_and_user_filters_reach_members_at_2_83_and_are_dropped_before(
    member, api_as, query, match, other
):
    dave = make_persona("dave", "alpha", ["member"])
    if match.get("user") == "dave":
        match = {**match, "user": dave.user}
    _pair(member, match, other)
    query = query.format(dave=dave.user.pk)
    api = api_as(member)
    assert _names(api.get(f"{V}/servers?{query}", version="2.83")) == {"match"}
    assert _names(api.get(f"{V}/servers?{query}", version="2.82")) == {"match", "other"}


def test_host_and_hostname_filters_of_members(member, api_as):
    _pair(member, {"host": "compute9", "hostname": "web"}, {"hostname": "db"})
    api = api_as(member)
    # host is an admin's filter at every version: dropped for a member
    assert _names(api.get(f"{V}/servers?host=compute9", version="2.90")) == {"match", "other"}
    assert _names(api.get(f"{V}/servers?hostname=web", version="2.90")) == {"match"}
    assert _names(api.get(f"{V}/servers?hostname=web", version="2.89")) == {"match", "other"}


def test_unknown_parameters_are_ignored_below_2_75_and_refused_from_it(member, api_as):
    make_server(member)
    api = api_as(member)
    assert api.get(f"{V}/servers?colour=blue", version="2.74").status_code == 200
    refused = api.get(f"{V}/servers?colour=blue", version="2.75")
    assert refused.status_code == 400
    assert "colour" in refused.json()["badRequest"]["message"]


def test_an_admin_s_joined_table_filter_is_refused(admin, api_as):
    response = api_as(admin).get(f"{V}/servers?metadata=x")
    assert response.status_code == 400
    assert "metadata" in response.json()["badRequest"]["message"]


def test_an_invalid_status_is_400_from_2_38_and_an_empty_list_before(member, api_as):
    make_server(member)
    api = api_as(member)
    assert api.get(f"{V}/servers?status=NOPE", version="2.38").status_code == 400
    assert _names(api.get(f"{V}/servers?status=NOPE", version="2.37")) == set()


def test_sorting_by_a_key_and_refusing_host_sort_to_members(admin, member, api_as):
    for name in ("b", "c", "a"):
        make_server(member, name)
    api = api_as(member)
    listed = api.get(f"{V}/servers?sort_key=display_name&sort_dir=asc").json()["servers"]
    assert [s["name"] for s in listed] == ["a", "b", "c"]
    assert api.get(f"{V}/servers?sort_key=host").status_code == 403
    assert api_as(admin).get(f"{V}/servers?sort_key=host").status_code == 200
    assert api.get(f"{V}/servers?sort_key=nonsense").status_code == 400
