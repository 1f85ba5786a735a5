"""Issue 19: a container is resized on its own host (its host defines it again with the new
flavor's memory and CPU limits); with no room there it answers 409, since libvirt's LXC driver
cannot move it to another host, and nothing is claimed, recorded or sent."""

from __future__ import annotations

import pytest

from cloud.compute.models import Allocation, ComputeNode, Flavor, InstanceAction
from cloud.conductor.instance_events import apply_instance_event
from cloud.images.models import Image
from compute_agent import messages as msg
from tests.factories import V, host_up, make_server


@pytest.fixture
def lxc_host(db):
    # It could send guests away if it were a qemu host (a migration URI): the refusal to move is
    # the container's, not the host's.
    return ComputeNode.objects.create(
        service=host_up("lxc-1"), host="lxc-1", hypervisor_hostname="lxc-1",
        hypervisor_type="LXC", vcpus=4, memory_mb=1024, local_gb=100,
        migration_uri="qemu+tcp://10.77.0.21/system", host_ip="10.77.0.21")


@pytest.fixture
def container(member, lxc_host):
    image = Image.objects.create(
        name="kumo-tiny-ct", status="active", disk_format="raw", container_format="compressed",
        owner=member.project, visibility="private", size=1, properties={"hypervisor_type": "lxc"})
    server = make_server(member, "ct1", image_ref=str(image.id), host="lxc-1", node="lxc-1")
    Allocation.objects.create(instance=server, node=lxc_host, vcpus=1, memory_mb=128, disk_gb=1)
    ComputeNode.objects.filter(pk=lxc_host.pk).update(vcpus_used=1, memory_mb_used=128,
                                                      local_gb_used=1)
    return server


def _resize(api, server, flavor_id):
    return api.post(f"{V}/servers/{server.uuid}/action", {"resize": {"flavorRef": flavor_id}},
                    version="2.60")


def _report(server, event, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host, event=event,
        **fields))
    server.refresh_from_db()


def test_a_container_is_resized_on_its_host_and_confirmed(member, api_as, container, lxc_host,
                                                           sent):
    Flavor.objects.create(flavorid="2", name="m1.small", vcpus=2, memory_mb=512, root_gb=10)
    api = api_as(member)

    assert _resize(api, container, "2").status_code == 202

    (task,) = sent
    assert (task.name, task.queue) == (msg.TASK_RESIZE, msg.compute_queue("lxc-1"))
    request = msg.SpawnRequest.from_dict(task.args[0])
    assert (request.vcpus, request.memory_mb) == (2, 512)
    lxc_host.refresh_from_db()
    assert (lxc_host.vcpus_used, lxc_host.memory_mb_used) == (2, 512)
    _report(container, msg.EVENT_RESIZED, power_state="running")
    assert container.status == "VERIFY_RESIZE"
    assert api.post(f"{V}/servers/{container.uuid}/action", {"confirmResize": None},
                    version="2.60").status_code == 204
    container.refresh_from_db()
    assert (container.status, container.host) == ("ACTIVE", "lxc-1")
    assert container.flavor_snapshot["id"] == "2"


def test_a_container_without_room_on_its_host_is_409_and_does_not_move(
        member, api_as, container, lxc_host, sent):
    ComputeNode.objects.create(
        service=host_up("lxc-2"), host="lxc-2", hypervisor_hostname="lxc-2",
        hypervisor_type="LXC", vcpus=8, memory_mb=8192, local_gb=100,
        migration_uri="qemu+tcp://10.77.0.22/system", host_ip="10.77.0.22")
    Flavor.objects.create(flavorid="9", name="big", vcpus=1, memory_mb=2048, root_gb=10)

    response = _resize(api_as(member), container, "9")

    assert response.status_code == 409, response.content
    message = response.json()["conflictingRequest"]["message"]
    assert "not enough room on the container's host" in message
    assert "cannot migrate a container" in message
    assert sent == []
    container.refresh_from_db()
    assert (container.task_state, container.flavor_snapshot["id"]) == (None, "1")
    lxc_host.refresh_from_db()
    assert lxc_host.memory_mb_used == 128
    assert not InstanceAction.objects.filter(instance=container).exists()
