"""POST /os-kumo-placement-check: the scheduler's dry run, for admins only."""

from __future__ import annotations

import pytest

from cloud.compute.models import (
    Aggregate,
    AggregateHost,
    ComputeNode,
    Flavor,
    Instance,
    ServerGroup,
    ServerGroupMember,
)
from tests.factories import make_instance, make_node

V = "/compute/v2.1"
URL = f"{V}/os-kumo-placement-check"


@pytest.fixture
def small(db):
    return Flavor.objects.create(flavorid="2", name="m1.small", vcpus=1, memory_mb=2048,
                                 root_gb=10)


@pytest.fixture
def hosts(db):
    """compute-1 disabled; compute-2 with 1536 MiB free after its 1.5× ratio; compute-3 in az2;
    compute-4 and compute-5 with room, compute-4 the roomier."""
    make_node("compute-1", disabled=True)
    full = make_node("compute-2", memory_mb=4096, ram_ratio=1.5)
    ComputeNode.objects.filter(pk=full.pk).update(memory_mb_used=4608)
    make_node("compute-3")
    zone = Aggregate.objects.create(name="second", availability_zone="az2")
    AggregateHost.objects.create(aggregate=zone, host="compute-3")
    make_node("compute-4", memory_mb=8192)
    make_node("compute-5", memory_mb=4096)


def check(api, **wanted):
    return api.post(URL, {"placement_check": wanted})


def test_an_admin_sees_which_hosts_pass_in_order_and_why_the_others_do_not(
        admin, api_as, small, hosts):
    response = check(api_as(admin), flavorRef="2", availability_zone="nova")

    assert response.status_code == 200, response.content
    body = response.json()["placement_check"]
    assert body["flavor"] == {"id": "2", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 10,
                              "ephemeral": 0}
    assert (body["image"], body["group"], body["availability_zone"]) == (None, None, "nova")
    assert (body["considered"], body["fits"]) == (5, True)
    assert [(h["host"], h["rank"]) for h in body["hosts"] if h["passed"]] == [
        ("compute-4", 1), ("compute-5", 2)]
    assert {h["host"]: (h["filter"], h["reason"]) for h in body["hosts"] if not h["passed"]} == {
        "compute-1": ("ComputeEnabledFilter", "Service: disabled by an operator"),
        "compute-3": ("AvailabilityZoneFilter", "Zone: in az2, not nova"),
        "compute-2": ("RamFilter", "RAM: needs 2048 MiB, 1536 free after the 1.5× ratio"),
    }
    first = body["hosts"][0]
    assert set(first) == {"host", "hypervisor_hostname", "availability_zone", "passed", "rank",
                          "weight", "weights", "filter", "reason", "free_vcpus", "free_ram_mb",
                          "free_disk_gb"}
    assert (first["weight"], first["free_ram_mb"], first["filter"]) == (1.0, 8192, None)
    assert {"name": "RamFilter", "removed": 1} in body["filters"]


def test_a_dry_run_claims_nothing_and_creates_no_server(admin, api_as, small, hosts):
    assert check(api_as(admin), flavorRef="2").status_code == 200
    assert set(ComputeNode.objects.values_list("memory_mb_used", flat=True)) == {0, 4608}
    assert not Instance.objects.exists()


def test_an_anti_affinity_group_keeps_the_answer_off_its_members_hosts(
        admin, api_as, small, hosts):
    group = ServerGroup.objects.create(name="spread", policy="anti-affinity",
                                       project=admin.project, user=admin.user)
    placed = make_instance(host="compute-4", task_state=None)
    ServerGroupMember.objects.create(group=group, instance=placed)

    body = check(api_as(admin), flavorRef="2", group=str(group.uuid)).json()["placement_check"]

    assert body["group"] == {"id": str(group.uuid), "name": "spread", "policy": "anti-affinity",
                             "rules": {}, "member_hosts": ["compute-4"]}
    assert [h["host"] for h in body["hosts"] if h["passed"]] == ["compute-3", "compute-5"]
    refused = next(h for h in body["hosts"] if h["host"] == "compute-4")
    assert (refused["filter"], refused["reason"]) == (
        "ServerGroupAntiAffinityFilter",
        "Anti-affinity: holds 1 member of the group, at most 1 per host")


def test_when_nothing_fits_the_answer_says_so(admin, api_as, hosts):
    Flavor.objects.create(flavorid="huge", name="huge", vcpus=1, memory_mb=65536, root_gb=1)
    body = check(api_as(admin), flavorRef="huge").json()["placement_check"]
    assert body["fits"] is False
    assert all(h["rank"] is None for h in body["hosts"])
    assert {h["filter"] for h in body["hosts"]} == {"ComputeEnabledFilter", "RamFilter"}


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_only_admins_may_ask(persona, request, api_as, small, hosts):
    response = check(api_as(request.getfixturevalue(persona)), flavorRef="2")
    assert response.status_code == 403
    assert response.json() == {"forbidden": {
        "code": 403, "message": "Policy doesn't allow compute:placement_check to be performed."}}


@pytest.mark.parametrize(("wanted", "message"), [
    ({"flavorRef": "nope"}, "Flavor nope could not be found."),
    ({"flavorRef": "2", "imageRef": "9b1d0f5e-0000-4000-8000-000000000000"},
     "Image 9b1d0f5e-0000-4000-8000-000000000000 could not be found."),
    ({"flavorRef": "2", "group": "9b1d0f5e-0000-4000-8000-000000000000"},
     "Instance group 9b1d0f5e-0000-4000-8000-000000000000 could not be found."),
    ({"flavorRef": "2", "availability_zone": "atlantis"},
     "The requested availability zone is not available"),
])
def test_what_a_boot_would_refuse_is_refused_with_400(admin, api_as, small, hosts, wanted,
                                                      message):
    response = check(api_as(admin), **wanted)
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == message


@pytest.mark.parametrize("body", [
    {}, {"placement_check": {}}, {"placement_check": {"flavorRef": 2}},
    {"placement_check": {"flavorRef": "2", "host": "compute-4"}}, [],
])
def test_a_malformed_body_is_refused_with_400(admin, api_as, small, body):
    response = api_as(admin).post(URL, body)
    assert response.status_code == 400
    assert set(response.json()["badRequest"]) == {"code", "message"}


def test_an_image_too_big_for_the_flavor_is_refused_as_a_boot_would(
        admin, api_as, small, image, hosts):
    image.min_ram = 4096
    image.save()
    response = check(api_as(admin), flavorRef="2", imageRef=str(image.id))
    assert response.json()["badRequest"]["message"] == (
        "Flavor's memory is too small for requested image.")
    image.min_ram = 0
    image.save()
    body = check(api_as(admin), flavorRef="2", imageRef=str(image.id)).json()["placement_check"]
    assert body["image"] == {"id": str(image.id), "name": "tiny"}
