"""/servers through the API layer: create validation, visibility, list filters, delete.

The scheduler and agents are not running here; what a boot does beyond the database is covered by
the integration tests. Messages are captured at the broker edge (on_commit callbacks)."""

import base64
import uuid

import pytest

from cloud.compute.models import Instance
from cloud.images.models import Image
from tests.factories import boot

V = "/compute/v2.1"


def _create(api, image, flavor="1", version="2.37", **server):
    return boot(api, image, name=server.pop("name", "vm1"), flavor=flavor, version=version, **server)


def test_create_returns_202_with_links_and_records_a_building_server(member, api_as, tiny, image, sent):
    api = api_as(member)
    response = _create(api, image)
    assert response.status_code == 202, response.content
    server = response.json()["server"]
    assert set(server) == {"id", "links", "OS-DCF:diskConfig", "security_groups"}
    assert [(s.name, s.args[0], s.queue) for s in sent] == [  # one schedule message
        ("scheduler.schedule_instance", server["id"], "scheduler")
    ]
    shown = api.get(f"{V}/servers/{server['id']}").json()["server"]
    assert shown["status"] == "BUILD"
    assert shown["OS-EXT-STS:task_state"] == "scheduling"
    assert shown["tenant_id"] == member.project.id
    assert "OS-EXT-SRV-ATTR:host" not in shown  # admin-only attribute


def test_create_with_unknown_flavor_or_image_is_400_and_stores_nothing(member, api_as, tiny, image):
    api = api_as(member)
    assert _create(api, image, flavor="999").status_code == 400
    bad_image = Image(id=uuid.uuid4())
    response = _create(api, bad_image)
    assert response.status_code == 400
    assert "could not be found" in response.json()["badRequest"]["message"]
    assert Instance.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"server": {"name": "", "imageRef": "x", "flavorRef": "1", "networks": "none"}},
        {"server": {"name": 5, "imageRef": "x", "flavorRef": "1", "networks": "none"}},
        {"server": {"imageRef": "x", "flavorRef": "1", "networks": "none"}},
        {"server": {"name": "a\x00b", "imageRef": "x", "flavorRef": "1", "networks": "none"}},
        {"server": {"name": "ok", "imageRef": "x", "flavorRef": "1", "networks": "some"}},
        {"server": {"name": "ok", "imageRef": "x", "flavorRef": "1", "networks": "none", "bogus": 1}},
        {"server": "not-an-object"},
        [],
    ],
)
def test_malformed_create_bodies_are_400(member, api_as, tiny, body):
    response = api_as(member).post(f"{V}/servers", body, version="2.37")
    assert response.status_code == 400
    assert response.json()["badRequest"]["code"] == 400


def test_invalid_json_is_400(member, api_as):
    response = api_as(member).post(f"{V}/servers", raw="{oops", version="2.37")
    assert response.status_code == 400
    assert "badRequest" in response.json()


def test_networks_is_required_from_237(member, api_as, tiny, image):
    body = {"server": {"name": "vm1", "imageRef": str(image.id), "flavorRef": "1"}}
    assert api_as(member).post(f"{V}/servers", body, version="2.37").status_code == 400


def test_user_data_must_be_base64(member, api_as, tiny, image):
    api = api_as(member)
    assert _create(api, image, user_data="not base64!").status_code == 400
    ok = base64.b64encode(b"#!/bin/sh\necho hi").decode()
    assert _create(api, image, user_data=ok).status_code == 202


def test_reader_cannot_create(reader, api_as, tiny, image):
    response = _create(api_as(reader), image)
    assert response.status_code == 403
    assert response.json()["forbidden"]["code"] == 403


def test_other_project_sees_404_for_a_foreign_server(member, other, api_as, tiny, image):
    server_id = _create(api_as(member), image).json()["server"]["id"]
    assert api_as(other).get(f"{V}/servers/{server_id}").status_code == 404
    assert api_as(other).delete(f"{V}/servers/{server_id}").status_code == 404
    assert api_as(other).get(f"{V}/servers").json()["servers"] == []
    assert Instance.objects.filter(deleted=False).count() == 1


@pytest.mark.parametrize("server_id", ["vm1", "12345", str(uuid.uuid4())])
def test_unknown_or_non_uuid_server_is_404(member, api_as, server_id):
    response = api_as(member).get(f"{V}/servers/{server_id}")
    assert response.status_code == 404
    assert response.json()["itemNotFound"]["code"] == 404


def test_list_filters_limit_marker_and_next_link(member, api_as, tiny, image):
    api = api_as(member)
    ids = [_create(api, image, name=f"web-{i}").json()["server"]["id"] for i in range(5)]
    page = api.get(f"{V}/servers/detail?limit=2").json()
    assert [s["id"] for s in page["servers"]] == ids[::-1][:2]
    next_href = page["servers_links"][0]["href"]
    assert "marker=" + ids[-2] in next_href
    rest = api.get(f"{V}/servers?limit=10&marker={ids[-2]}").json()
    assert [s["id"] for s in rest["servers"]] == ids[::-1][2:]
    assert api.get(f"{V}/servers?limit=0").json()["servers"] == []
    assert api.get(f"{V}/servers?limit=-1").status_code == 400
    assert api.get(f"{V}/servers?limit=abc").status_code == 400
    assert api.get(f"{V}/servers?marker={uuid.uuid4()}").status_code == 400
    assert len(api.get(f"{V}/servers?name=web-[12]").json()["servers"]) == 2
    assert len(api.get(f"{V}/servers?status=BUILD").json()["servers"]) == 5
    assert api.get(f"{V}/servers?status=ACTIVE").json()["servers"] == []
    assert api.get(f"{V}/servers?flavor=999").json()["servers"] == []
    assert len(api.get(f"{V}/servers?image={image.id}").json()["servers"]) == 5


def test_body_follows_the_microversion(member, admin, api_as, tiny, image):
    server_id = _create(api_as(member), image).json()["server"]["id"]
    at21 = api_as(member).get(f"{V}/servers/{server_id}").json()["server"]
    assert at21["flavor"]["id"] == "1" and "locked" not in at21 and "description" not in at21
    at247 = api_as(member).get(f"{V}/servers/{server_id}", version="2.47").json()["server"]
    assert at247["flavor"]["original_name"] == "m1.tiny" and "id" not in at247["flavor"]
    assert at247["locked"] is False and at247["tags"] == []
    as_admin = api_as(admin).get(f"{V}/servers/{server_id}", version="2.3").json()["server"]
    assert "OS-EXT-SRV-ATTR:hostname" in as_admin and "host_status" not in as_admin


def test_delete_of_an_unscheduled_server_completes_at_once(member, api_as, tiny, image):
    api = api_as(member)
    server_id = _create(api, image).json()["server"]["id"]
    assert api.delete(f"{V}/servers/{server_id}").status_code == 204
    assert api.get(f"{V}/servers/{server_id}").status_code == 404
    assert api.get(f"{V}/servers").json()["servers"] == []
    row = Instance.objects.get(pk=server_id)
    assert row.deleted and row.vm_state == "deleted"


def test_admin_all_tenants_sees_every_project(member, other, admin, api_as, tiny, image):
    image.visibility = "public"
    image.save()
    _create(api_as(other), image)
    assert api_as(admin).get(f"{V}/servers").json()["servers"] == []
    everyone = api_as(admin).get(f"{V}/servers?all_tenants=1").json()["servers"]
    assert len(everyone) == 1
    assert api_as(other).get(f"{V}/servers?all_tenants=1").status_code == 403
    assert api_as(member).get(f"{V}/servers?all_tenants=1").status_code == 403


@pytest.fixture
def private_net(admin):
    from cloud.network.models import Network, Subnet

    net = Network.objects.create(name="private", shared=True, project=admin.project)
    Subnet.objects.create(network=net, name="private-subnet", cidr="10.0.0.0/24",
                          gateway_ip="10.0.0.1",
                          allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.250"}])
    return net


def test_auto_network_gives_each_server_its_own_address(member, api_as, tiny, image, private_net):
    api = api_as(member)
    first = _create(api, image, name="a", networks="auto").json()["server"]["id"]
    second = _create(api, image, name="b", networks=[{"uuid": str(private_net.id)}]).json()["server"]["id"]
    addrs = []
    for server_id in (first, second):
        server = api.get(f"{V}/servers/{server_id}").json()["server"]
        (entry,) = server["addresses"]["private"]
        assert entry["version"] == 4 and entry["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e")
        addrs.append(entry["addr"])
    assert addrs == ["10.0.0.10", "10.0.0.11"]
    api.delete(f"{V}/servers/{first}")
    from cloud.network.models import Port

    assert not Port.objects.filter(device_id=first).exists()


def test_none_network_gives_no_address(member, api_as, tiny, image, private_net):
    api = api_as(member)
    server_id = _create(api, image, networks="none").json()["server"]["id"]
    assert api.get(f"{V}/servers/{server_id}").json()["server"]["addresses"] == {}


def test_unknown_network_is_400_and_stores_nothing(member, api_as, tiny, image):
    response = _create(api_as(member), image, networks=[{"uuid": str(uuid.uuid4())}])
    assert response.status_code == 400
    assert Instance.objects.count() == 0
