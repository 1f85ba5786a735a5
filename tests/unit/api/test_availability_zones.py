"""/os-availability-zone[/detail], zone checks at boot, and the zone a server body shows."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud.compute import states
from cloud.compute.models import Aggregate, AggregateHost, Instance, Service
from tests.factories import boot, make_node

V = "/compute/v2.1"


def zone_aggregate(zone: str, *hosts: str, name: str | None = None) -> Aggregate:
    aggregate = Aggregate.objects.create(name=name or f"agg-{zone}", availability_zone=zone)
    for host in hosts:
        AggregateHost.objects.create(aggregate=aggregate, host=host)
    return aggregate


def control_plane() -> None:
    now = timezone.now()
    Service.objects.create(host="ctl", binary="nova-scheduler", last_seen_up=now)
    Service.objects.create(host="ctl", binary="nova-conductor", last_seen_up=now)


def zones(api, path="/os-availability-zone") -> dict[str, dict]:
    response = api.get(V + path)
    assert response.status_code == 200, response.content
    return {z["zoneName"]: z for z in response.json()["availabilityZoneInfo"]}


# --- listing zones


def test_everyone_sees_the_default_zone_and_aggregate_zones_without_hosts(reader, api_as):
    make_node("c1")
    make_node("c2")
    make_node("c3")
    zone_aggregate("az1", "c3")
    control_plane()

    listed = zones(api_as(reader))

    assert listed == {
        "az1": {"zoneName": "az1", "zoneState": {"available": True}, "hosts": None},
        "nova": {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
    }


def test_a_zone_whose_hosts_are_all_disabled_is_listed_as_not_available(reader, api_as):
    make_node("c1")
    make_node("c3", disabled=True)
    zone_aggregate("az1", "c3")
    assert zones(api_as(reader))["az1"]["zoneState"] == {"available": False}


def test_an_aggregate_zone_with_no_hosts_is_not_a_zone_yet(reader, api_as):
    make_node("c1")
    zone_aggregate("empty")
    assert set(zones(api_as(reader))) == {"nova"}


def test_with_no_compute_hosts_there_are_no_zones(reader, api_as):
    assert zones(api_as(reader)) == {}


def test_detail_is_for_admins_only(member, api_as):
    response = api_as(member).get(f"{V}/os-availability-zone/detail")
    assert response.status_code == 403
    assert "forbidden" in response.json()


def test_detail_shows_hosts_and_their_services_and_the_internal_zone(admin, api_as):
    make_node("c1")
    make_node("c3")
    Service.objects.filter(host="c1").update(
        last_seen_up=timezone.now() - timedelta(hours=1)
    )
    zone_aggregate("az1", "c3")
    control_plane()

    detail = zones(api_as(admin), "/os-availability-zone/detail")

    assert set(detail) == {"az1", "internal", "nova"}
    assert set(detail["internal"]["hosts"]["ctl"]) == {"nova-scheduler", "nova-conductor"}
    c1 = detail["nova"]["hosts"]["c1"]["nova-compute"]
    assert (c1["available"], c1["active"]) == (False, True)  # enabled, but silent for an hour
    c3 = detail["az1"]["hosts"]["c3"]["nova-compute"]
    assert (c3["available"], c3["active"]) == (True, True)
    assert isinstance(c3["updated_at"], str)
    assert list(detail["az1"]["hosts"]) == ["c3"]


def test_detail_leaves_out_disabled_services_and_gives_unavailable_zones_no_hosts(admin, api_as):
    make_node("c1")
    make_node("c2", disabled=True)
    make_node("c3", disabled=True)
    zone_aggregate("az1", "c3")

    detail = zones(api_as(admin), "/os-availability-zone/detail")

    assert list(detail["nova"]["hosts"]) == ["c1"]
    assert detail["az1"] == {"zoneName": "az1", "zoneState": {"available": False}, "hosts": None}


# --- zones at boot


def test_booting_into_an_unknown_zone_is_400_and_stores_nothing(member, api_as, tiny, image):
    make_node("c1")
    response = boot(api_as(member), image, availability_zone="atlantis")
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == (
        "The requested availability zone is not available"
    )
    assert not Instance.objects.exists()


def test_booting_into_a_zone_without_enabled_hosts_is_400(member, api_as, tiny, image):
    make_node("c1")
    make_node("c3", disabled=True)
    zone_aggregate("az1", "c3")
    assert boot(api_as(member), image, availability_zone="az1").status_code == 400
    assert boot(api_as(member), image, availability_zone="internal").status_code == 400


def test_booting_into_a_known_zone_records_it_for_the_scheduler(member, api_as, tiny, image):
    make_node("c1")
    make_node("c3")
    zone_aggregate("az1", "c3")
    response = boot(api_as(member), image, availability_zone="az1")
    assert response.status_code == 202, response.content
    assert Instance.objects.get().availability_zone == "az1"
    assert boot(api_as(member), image, availability_zone="nova").status_code == 202


# --- the zone in the server body


def _server(member, **fields) -> Instance:
    return Instance.objects.create(
        display_name=fields.pop("name", "vm"), project=member.project, user=member.user,
        vcpus=1, memory_mb=128, root_gb=1, **fields,
    )


def _shown_zone(api, instance: Instance) -> str:
    server = api.get(f"{V}/servers/{instance.uuid}").json()["server"]
    return server["OS-EXT-AZ:availability_zone"]


def test_a_placed_server_shows_the_zone_of_its_host(member, api_as):
    make_node("c1")
    make_node("c3")
    zone_aggregate("az1", "c3")
    api = api_as(member)
    assert _shown_zone(api, _server(member, host="c3", vm_state=states.ACTIVE)) == "az1"
    assert _shown_zone(api, _server(member, host="c1", vm_state=states.ACTIVE)) == "nova"


def test_an_unplaced_server_shows_the_zone_it_asked_for_or_none(member, api_as):
    api = api_as(member)
    assert _shown_zone(api, _server(member, availability_zone="az1")) == "az1"
    assert _shown_zone(api, _server(member)) == ""


def test_a_page_of_servers_costs_the_same_queries_however_many_hosts_and_zones(member, api_as):
    api = api_as(member)
    for i in range(4):
        make_node(f"c{i}")
        zone_aggregate(f"az{i}", f"c{i}")

    def queries_for_detail_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(f"{V}/servers/detail").status_code == 200
        return len(captured)

    _server(member, name="a", host="c0", vm_state=states.ACTIVE)
    queries_for_detail_list()  # the token's validation is remembered from now on
    one = queries_for_detail_list()
    for i in range(1, 4):
        _server(member, name=f"s{i}", host=f"c{i}", vm_state=states.ACTIVE)
    many = api.get(f"{V}/servers/detail").json()["servers"]
    assert sorted(s["OS-EXT-AZ:availability_zone"] for s in many) == ["az0", "az1", "az2", "az3"]
    assert queries_for_detail_list() == one
