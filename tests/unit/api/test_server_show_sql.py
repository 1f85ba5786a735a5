"""GET /servers/{id} reads a server and all its body adds in one statement
(cloud/api/compute/server_show.py): its body must be exactly what the ORM path (SQLite's, and the
show before it) gives, for servers that differ in everything the extra reads bring — two ports, a
floating IP, volumes, a zoned host, a host that went silent, a fault, tags, a group, image
properties — and it must find exactly what get_server finds (404 for another project's server, a
deleted one, an id that is no uuid)."""

from __future__ import annotations

import pytest

from cloud.api.compute import server_show
from cloud.compute.models import (
    Aggregate,
    AggregateHost,
    BlockDeviceMapping,
    InstanceFault,
    InstanceTag,
    ServerGroup,
)
from cloud.images.models import Image
from cloud.network.models import FloatingIp, Network, Port
from tests.factories import give_address, host_up, make_server

pytestmark = pytest.mark.usefixtures("mv2104")
V = "/compute/v2.1"
VERSIONS = ["2.1", "2.3", "2.16", "2.26", "2.47", "2.71", "2.98", "2.100", "2.104"]


@pytest.fixture
def servers(member):
    image = Image.objects.create(name="img", status="active", disk_format="qcow2",
                                 container_format="bare", owner=member.project,
                                 properties={"hw_disk_bus": "virtio", "other": "x"})
    zoned = make_server(member, "zoned", image_ref=str(image.id), host="zhost",
                        metadata={"a": "b"})
    host_up("zhost")
    aggregate = Aggregate.objects.create(name="agg", availability_zone="az1")
    AggregateHost.objects.create(aggregate=aggregate, host="zhost")
    port = give_address(zoned, addr="10.0.0.11")
    give_address(zoned, addr="10.0.0.12")
    outside = Network.objects.create(name="public", external=True)
    floating_port = Port.objects.create(network=outside, mac_address="fa:16:3e:00:99:01")
    FloatingIp.objects.create(floating_network=outside, floating_port=floating_port,
                              floating_ip_address="172.24.4.5", port=port,
                              fixed_ip_address="10.0.0.11")
    BlockDeviceMapping.objects.create(instance=zoned, volume_id="8c2c7a0e-1d5e-4ad8-9a53-"
                                      "3bde2b3a0001", delete_on_termination=True)
    BlockDeviceMapping.objects.create(instance=zoned, volume_id="8c2c7a0e-1d5e-4ad8-9a53-"
                                      "3bde2b3a0002")
    BlockDeviceMapping.objects.create(instance=zoned, volume_id=None)  # not created yet
    for tag in ("z", "a"):
        InstanceTag.objects.create(instance=zoned, tag=tag)
    group = ServerGroup.objects.create(name="g", project=member.project, user=member.user,
                                       policy="affinity")
    group.members.create(instance=zoned)
    failed = make_server(member, "failed", vm_state="error", host="silent",
                         image_ref="0b7e4c52-2f0c-4a43-9d51-5a4a2d1f0000")  # image deleted
    host_up("silent", up=False)
    InstanceFault.objects.create(instance=failed, code=500, message="old", details="t0")
    InstanceFault.objects.create(instance=failed, code=500, message="boom", details="trace")
    building = make_server(member, "building", vm_state="building", task_state="spawning",
                           host=None, node=None, power_state="nostate")
    return [zoned, failed, building]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("persona", ["member", "admin"])
def test_a_show_in_one_statement_is_the_show_through_the_orm(servers, member, admin, api_as,
                                                             monkeypatch, persona, version):
    api = api_as({"member": member, "admin": admin}[persona])
    for server in servers:
        path = f"{V}/servers/{server.uuid}"
        one = api.get(path, version=version)
        with monkeypatch.context() as m:
            m.setattr(server_show, "available", lambda: False)
            orm = api.get(path, version=version)

        assert one.status_code == orm.status_code == 200, one.content
        assert one.json() == orm.json()


def test_what_the_extra_reads_bring_is_shown(servers, admin, api_as):
    zoned = api_as(admin).get(f"{V}/servers/{servers[0].uuid}",
                              version="2.100").json()["server"]

    assert zoned["OS-EXT-AZ:availability_zone"] == "az1"
    assert zoned["addresses"]["private"] == [
        {"version": 4, "addr": "10.0.0.11", "OS-EXT-IPS:type": "fixed",
         "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:00"},
        {"version": 4, "addr": "172.24.4.5", "OS-EXT-IPS:type": "floating",
         "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:00"},
        {"version": 4, "addr": "10.0.0.12", "OS-EXT-IPS:type": "fixed",
         "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]
    assert [v["id"][-4:] for v in zoned["os-extended-volumes:volumes_attached"]] == ["0001", "0002"]
    assert zoned["tags"] == ["a", "z"]
    assert zoned["image"]["properties"] == {"hw_disk_bus": "virtio"}
    assert zoned["host_status"] == "UP"
    failed = api_as(admin).get(f"{V}/servers/{servers[1].uuid}",
                               version="2.100").json()["server"]
    assert failed["fault"]["message"] == "boom"
    assert failed["host_status"] == "UNKNOWN"


def test_it_finds_what_get_server_finds(servers, member, other, admin, api_as):
    zoned = servers[0]
    assert api_as(other).get(f"{V}/servers/{zoned.uuid}").status_code == 404
    assert api_as(admin).get(f"{V}/servers/{zoned.uuid}").status_code == 200
    assert api_as(member).get(f"{V}/servers/not-a-uuid").status_code == 404
    zoned.deleted = True
    zoned.save()
    assert api_as(member).get(f"{V}/servers/{zoned.uuid}").status_code == 404
    assert api_as(admin).get(f"{V}/servers/{zoned.uuid}").status_code == 404
