"""Issue 19: what a container cannot do answers 409 with the reason, in Nova's error shape, before
anything is begun, recorded or sent to its host; what it can do still goes to the host."""

from __future__ import annotations

import pytest

from cloud.compute import guest_kinds
from cloud.compute.models import ConsoleToken, InstanceAction
from cloud.images.models import Image
from compute_agent import messages as msg
from tests.factories import V, make_node, make_server


def _act(api, server, body, version="2.60"):
    return api.post(f"{V}/servers/{server.uuid}/action", body, version=version)


# (action body, the name Nova's 409 uses, words of the reason)
REFUSED = [
    ({"migrate": None}, "migrate", "cannot migrate a container"),
    ({"os-migrateLive": {"host": None, "block_migration": "auto"}}, "live-migration",
     "cannot migrate a container"),
    ({"rescue": None}, "rescue", "no rescue disk"),
    ({"suspend": None}, "suspend", "no managed save"),
    ({"trigger_crash_dump": None}, "trigger_crash_dump", "no kernel of its own"),
]


@pytest.mark.parametrize(("body", "shown", "why"), REFUSED, ids=[b[1] for b in REFUSED])
def test_a_container_refuses_with_the_reason_and_nothing_is_sent(
    member, admin, api_as, container, sent, body, shown, why
):
    images_before = Image.objects.count()
    # Migrations are an administrator's (Nova's default policy); the rest a member's.
    who = admin if "migrat" in shown else member
    response = _act(api_as(who), container, body)
    assert response.status_code == 409, response.content
    message = response.json()["conflictingRequest"]["message"]
    assert message.startswith(f"Cannot '{shown}' instance {container.uuid}: ")
    assert why in message
    assert sent == []
    container.refresh_from_db()
    assert (container.vm_state, container.task_state) == ("active", None)
    assert not InstanceAction.objects.filter(instance=container).exists()
    assert Image.objects.count() == images_before  # no queued snapshot left behind


@pytest.mark.parametrize(("body", "task"), [
    ({"createImage": {"name": "snap"}}, msg.TASK_SNAPSHOT),
    ({"suspend": None}, msg.TASK_SUSPEND),
    ({"rescue": None}, msg.TASK_RESCUE),
])
def test_the_same_actions_on_a_vm_go_to_its_host(member, api_as, vm, sent, body, task):
    response = _act(api_as(member), vm, body)
    assert response.status_code in (200, 202), response.content
    assert [s.name for s in sent] == [task]


@pytest.mark.parametrize(("body", "task"), [
    ({"os-stop": None}, msg.TASK_STOP),
    ({"pause": None}, msg.TASK_PAUSE),
    ({"reboot": {"type": "SOFT"}}, msg.TASK_REBOOT),
])
def test_what_a_container_can_do_still_goes_to_its_host(member, api_as, container, sent, body,
                                                        task):
    response = _act(api_as(member), container, body)
    assert response.status_code == 202, response.content
    assert [(s.name, s.queue) for s in sent] == [(task, "compute.lxc-1")]


@pytest.mark.parametrize("console", [
    {"protocol": "vnc", "type": "novnc"},
    {"protocol": "spice", "type": "spice-html5"},
    {"protocol": "serial", "type": "serial"},
])
def test_a_container_has_no_remote_console(member, api_as, container, console):
    response = api_as(member, "2.60").post(f"{V}/servers/{container.uuid}/remote-consoles",
                                           {"remote_console": console})
    assert response.status_code == 409, response.content
    message = response.json()["conflictingRequest"]["message"]
    assert "a container has no screen" in message and "console log" in message
    assert not ConsoleToken.objects.exists()


def test_the_legacy_vnc_console_action_is_refused_for_a_container(member, api_as, container):
    response = _act(api_as(member), container, {"os-getVNCConsole": {"type": "novnc"}},
                    version="2.1")
    assert response.status_code == 409, response.content
    assert "a container has no screen" in response.json()["conflictingRequest"]["message"]
    assert not ConsoleToken.objects.exists()


def test_a_server_on_no_host_yet_is_what_its_image_asks_for(member, api_as, ct_image, image,
                                                           sent):
    building = make_server(member, "ct2", image_ref=str(ct_image.id), host=None, node=None,
                           vm_state="building", task_state="scheduling")
    vm_building = make_server(member, "vm2", image_ref=str(image.id), host=None, node=None,
                              vm_state="building", task_state="scheduling")
    assert guest_kinds.containers([building, vm_building]) == {str(building.uuid)}
    response = _act(api_as(member), building, {"rescue": None})
    assert response.status_code == 409
    assert "no rescue disk" in response.json()["conflictingRequest"]["message"]
    assert sent == []


def test_the_host_decides_once_there_is_one(member, ct_image, image):
    """A placed server is what its host runs, even if its image says otherwise or is gone."""
    make_node("lxc-1", hypervisor_type="LXC")
    make_node("compute1", hypervisor_type="QEMU")
    on_lxc = make_server(member, "a", image_ref=str(image.id), host="lxc-1", node="lxc-1")
    on_qemu = make_server(member, "b", image_ref=str(ct_image.id))
    ct_image.delete()
    assert guest_kinds.kind(on_lxc) == guest_kinds.CONTAINER
    assert guest_kinds.kind(on_qemu) == guest_kinds.VM


def test_a_rebuild_takes_only_an_image_of_the_servers_own_kind(member, api_as, container, vm,
                                                                ct_image, image, sent):
    api = api_as(member)
    wrong = [(container, image, "is for virtual machines", "is a container"),
             (vm, ct_image, "is for containers (hypervisor_type lxc)", "is a virtual machine")]
    for server, other, wants, actual in wrong:
        response = _act(api, server, {"rebuild": {"imageRef": str(other.id)}})
        assert response.status_code == 400, response.content
        message = response.json()["badRequest"]["message"]
        assert wants in message and actual in message
    assert sent == []
    response = _act(api, container, {"rebuild": {"imageRef": str(ct_image.id)}})
    assert response.status_code == 202, response.content
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_REBUILD, "compute.lxc-1")]


def test_a_container_takes_no_volume_and_the_volume_stays_available(member, api_as, container,
                                                                    vm, sent):
    from cloud.compute.models import BlockDeviceMapping
    from cloud.volumes.models import Volume, VolumeAttachment

    volume = Volume.objects.create(project=member.project, size=1, status="available")
    volume.connection = {"driver_volume_type": "nbd", "host": "10.77.0.50", "port": 10809,
                         "export": str(volume.pk)}
    volume.save(update_fields=["connection"])
    body = {"volumeAttachment": {"volumeId": str(volume.id)}}
    api = api_as(member)
    response = api.post(f"{V}/servers/{container.uuid}/os-volume_attachments", body,
                        version="2.60")
    assert response.status_code == 409, response.content
    assert "cannot attach a volume" in response.json()["conflictingRequest"]["message"]
    assert sent == []
    volume.refresh_from_db()
    assert volume.status == "available"
    assert not VolumeAttachment.objects.exists()
    assert not BlockDeviceMapping.objects.filter(instance=container).exists()
    response = api.post(f"{V}/servers/{vm.uuid}/os-volume_attachments", body, version="2.60")
    assert response.status_code == 200, response.content
    assert [s.name for s in sent] == [msg.TASK_ATTACH_VOLUME]
