"""A server's volumes: os-volume_attachments through the host's reports, the attachment's states
(cloud/volumes/attachments.py) with a failed attach leaving the volume available, an in-use
volume that cannot be deleted, and the volumes a deleted server lets go."""

from __future__ import annotations

import uuid

import pytest

from cloud import errors
from cloud.compute import server_volumes
from cloud.compute.models import BlockDeviceMapping
from cloud.conductor.instance_events import apply_instance_event
from cloud.volumes import attachments, transitions
from cloud.volumes.models import Volume, VolumeAttachment
from compute_agent import messages as msg
from tests.factories import V, make_server

URL = "{V}/servers/{server}/os-volume_attachments"


def _volume(owner, status="available", **fields) -> Volume:
    volume = Volume.objects.create(project=owner.project, size=1, status=status, **fields)
    if "connection" not in fields:
        volume.connection = {"driver_volume_type": "nbd", "host": "10.77.0.50", "port": 10809,
                             "export": str(volume.pk)}
        volume.save(update_fields=["connection"])
    return volume


def _report(server, event, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host, event=event,
        power_state="running", **fields))
    server.refresh_from_db()


def _url(server, volume=None) -> str:
    base = URL.format(V=V, server=server.uuid)
    return base if volume is None else f"{base}/{volume}"


@pytest.fixture
def server(member, db):
    return make_server(member)


# --- the state machine


def test_reserve_attach_detach_moves_the_volume_through_cinders_statuses(member, server):
    volume = _volume(member)
    attachment = attachments.reserve(volume.pk, str(server.uuid))
    volume.refresh_from_db()
    assert volume.status == "reserved"
    with pytest.raises(errors.BadRequest):  # one server at a time: no multiattach
        attachments.reserve(volume.pk, str(uuid.uuid4()))
    assert attachments.begin_attach(attachment.pk, host="compute1")["export"] == str(volume.pk)
    assert attachments.complete(attachment.pk)
    assert not attachments.complete(attachment.pk)  # a repeated report changes nothing
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status) == ("in-use", "attached")
    attachments.begin_detach(attachment.pk)
    volume.refresh_from_db()
    assert volume.status == "detaching"
    assert attachments.detach_failed(attachment.pk)  # the guest kept it
    volume.refresh_from_db()
    assert volume.status == "in-use"
    attachments.begin_detach(attachment.pk)
    assert attachments.remove(attachment.pk)
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status) == ("available", "detached")
    assert not VolumeAttachment.objects.filter(volume=volume).exists()


def test_a_failed_attach_leaves_the_volume_available_with_its_data_where_it_was(member, server):
    volume = _volume(member)
    attachment = attachments.reserve(volume.pk, str(server.uuid))
    attachments.begin_attach(attachment.pk, host="compute1")
    assert attachments.fail(attachment.pk, "qemu could not open the export")
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status) == ("available", "detached")
    assert volume.connection["export"] == str(volume.pk)
    assert not attachments.fail(attachment.pk)  # nothing left to undo


def test_an_in_use_volume_cannot_be_moved_to_deleting(member, server):
    volume = _volume(member)
    attachment = attachments.reserve(volume.pk, str(server.uuid))
    attachments.begin_attach(attachment.pk, host="compute1")
    attachments.complete(attachment.pk)
    assert not transitions.move(volume.pk, "deleting")
    volume.refresh_from_db()
    assert volume.status == "in-use"


# --- os-volume_attachments


def test_attach_reserves_the_volume_asks_the_host_and_its_report_makes_it_in_use(
    member, api_as, server, sent
):
    volume = _volume(member)
    api = api_as(member)
    response = api.post(_url(server), {"volumeAttachment": {
        "volumeId": str(volume.pk), "tag": "data", "delete_on_termination": True}},
        version="2.79")
    assert response.status_code == 200, response.content
    body = response.json()["volumeAttachment"]
    assert body == {"device": "/dev/vdb", "id": str(volume.pk), "serverId": str(server.uuid),
                    "volumeId": str(volume.pk), "tag": "data", "delete_on_termination": True}
    server.refresh_from_db()
    volume.refresh_from_db()
    assert (server.task_state, volume.status) == ("volume_attaching", "attaching")
    ((name, (payload,), queue),) = sent
    assert (name, queue) == (msg.TASK_ATTACH_VOLUME, "compute.compute1")
    assert payload["device"]["device"] == "vdb"
    assert payload["device"]["connection"]["export"] == str(volume.pk)

    _report(server, msg.EVENT_VOLUME_ATTACHED, volume_id=str(volume.pk))
    volume.refresh_from_db()
    assert (server.task_state, volume.status, volume.attach_status) == (None, "in-use", "attached")
    shown = api.get(_url(server, volume.pk), version="2.89").json()["volumeAttachment"]
    mapping = BlockDeviceMapping.objects.get(volume_id=volume.pk)
    assert "id" not in shown
    assert (shown["attachment_id"], shown["bdm_uuid"]) == (str(mapping.attachment_id),
                                                           str(mapping.uuid))
    listed = api.get(_url(server), version="2.1").json()["volumeAttachments"]
    assert listed == [{"device": "/dev/vdb", "id": str(volume.pk), "serverId": str(server.uuid),
                       "volumeId": str(volume.pk)}]


def test_a_second_volume_gets_the_next_device_and_an_in_use_one_is_400(
    member, api_as, server, sent
):
    api = api_as(member)
    first, second = _volume(member), _volume(member)
    api.post(_url(server), {"volumeAttachment": {"volumeId": str(first.pk)}})
    _report(server, msg.EVENT_VOLUME_ATTACHED, volume_id=str(first.pk))
    body = api.post(_url(server), {"volumeAttachment": {"volumeId": str(second.pk)}}).json()
    assert body["volumeAttachment"]["device"] == "/dev/vdc"
    _report(server, msg.EVENT_VOLUME_ATTACHED, volume_id=str(second.pk))
    other = make_server(member, name="vm2")
    response = api.post(_url(other), {"volumeAttachment": {"volumeId": str(first.pk)}})
    assert response.status_code == 400
    assert "in-use" in response.json()["badRequest"]["message"]
    other.refresh_from_db()
    assert other.task_state is None  # the refusal left nothing


def test_a_failed_attach_report_leaves_the_volume_available_and_the_server_without_it(
    member, api_as, server, sent
):
    volume = _volume(member)
    api = api_as(member)
    api.post(_url(server), {"volumeAttachment": {"volumeId": str(volume.pk)}})
    _report(server, msg.EVENT_ACTION_FAILED, action=msg.ACTION_ATTACH_VOLUME,
            volume_id=str(volume.pk), message="could not connect to the export")
    volume.refresh_from_db()
    assert (server.task_state, volume.status) == (None, "available")
    assert api.get(_url(server)).json() == {"volumeAttachments": []}
    assert not VolumeAttachment.objects.filter(volume=volume).exists()


def test_detach_waits_for_the_host_then_the_volume_is_available(member, api_as, server, sent):
    volume = _volume(member)
    api = api_as(member)
    api.post(_url(server), {"volumeAttachment": {"volumeId": str(volume.pk)}})
    _report(server, msg.EVENT_VOLUME_ATTACHED, volume_id=str(volume.pk))
    assert api.delete(_url(server, volume.pk)).status_code == 202
    server.refresh_from_db()
    volume.refresh_from_db()
    assert (server.task_state, volume.status) == ("volume_detaching", "detaching")
    assert sent[-1].name == msg.TASK_DETACH_VOLUME
    _report(server, msg.EVENT_VOLUME_DETACHED, volume_id=str(volume.pk))
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status) == ("available", "detached")
    assert api.get(_url(server)).json() == {"volumeAttachments": []}
    assert api.delete(_url(server, volume.pk)).status_code == 404


def test_swap_is_409_and_2_85_changes_delete_on_termination(admin, member, api_as, server, sent):
    volume, other = _volume(member), _volume(member)
    api_as(member).post(_url(server), {"volumeAttachment": {"volumeId": str(volume.pk)}})
    _report(server, msg.EVENT_VOLUME_ATTACHED, volume_id=str(volume.pk))
    api = api_as(admin)
    swap = {"volumeAttachment": {"volumeId": str(other.pk)}}
    assert api.put(_url(server, volume.pk), swap).status_code == 409
    flag = {"volumeAttachment": {"volumeId": str(volume.pk), "delete_on_termination": True}}
    assert api.put(_url(server, volume.pk), flag, version="2.85").status_code == 202
    assert BlockDeviceMapping.objects.get(volume_id=volume.pk).delete_on_termination


def test_a_deleted_server_lets_its_volume_go_available(member, server):
    kept = _volume(member)
    attachment = attachments.reserve(kept.pk, str(server.uuid))
    attachments.begin_attach(attachment.pk, host="compute1")
    attachments.complete(attachment.pk)
    BlockDeviceMapping.objects.create(instance=server, volume_id=kept.pk, device_name="/dev/vdb",
                                      attachment_id=attachment.pk)
    from cloud.compute.servers import complete_delete

    complete_delete(str(server.uuid))
    kept.refresh_from_db()
    assert (kept.status, kept.attach_status) == ("available", "detached")
    assert not server_volumes.mappings_of(str(server.uuid))


def test_an_attach_the_host_never_answered_is_undone_by_the_reconcilers_failure(
    member, api_as, server, sent
):
    volume = _volume(member)
    api_as(member).post(_url(server), {"volumeAttachment": {"volumeId": str(volume.pk)}})
    # What the reconciler applies past the deadline: a failure naming the operation only.
    _report(server, msg.EVENT_ACTION_FAILED, action="attach_volume",
            message="host compute1 did not finish it in 300 s")
    volume.refresh_from_db()
    assert (server.task_state, volume.status) == (None, "available")
    assert not BlockDeviceMapping.objects.filter(volume_id=volume.pk).exists()


def test_the_server_shows_its_volumes_as_volumes_attached(member, api_as, server, sent):
    volume = _volume(member)
    api = api_as(member)
    api.post(_url(server), {"volumeAttachment": {"volumeId": str(volume.pk)}})
    _report(server, msg.EVENT_VOLUME_ATTACHED, volume_id=str(volume.pk))
    shown = api.get(f"{V}/servers/{server.uuid}", version="2.3").json()["server"]
    assert shown["os-extended-volumes:volumes_attached"] == [
        {"id": str(volume.pk), "delete_on_termination": False}]
    listed = api.get(f"{V}/servers/detail", version="2.1").json()["servers"]
    assert listed[0]["os-extended-volumes:volumes_attached"] == [{"id": str(volume.pk)}]


@pytest.mark.parametrize("vm_state", ["suspended", "building"])
def test_a_state_that_forbids_an_attach_is_409_and_reserves_nothing(member, api_as, sent,
                                                                    vm_state):
    # Suspended as Nova: its memory image would not know the disk when it resumes.
    server = make_server(member, vm_state=vm_state)
    volume = _volume(member)
    response = api_as(member).post(_url(server), {"volumeAttachment": {
        "volumeId": str(volume.pk)}})
    assert response.status_code == 409
    volume.refresh_from_db()
    assert volume.status == "available" and sent == []


def test_a_shelved_offloaded_server_takes_and_gives_back_a_volume_at_once(member, api_as, sent):
    # No host holds the guest (Nova's attach to a shelved-offloaded instance): the volume is in
    # use by the server at once and its unshelve's spawn carries it.
    server = make_server(member, vm_state="shelved_offloaded", host=None)
    volume = _volume(member)
    api = api_as(member)
    response = api.post(_url(server), {"volumeAttachment": {"volumeId": str(volume.pk)}},
                        version="2.20")
    assert response.status_code == 200, response.content
    assert response.json()["volumeAttachment"]["device"] == "/dev/vdb"
    volume.refresh_from_db()
    server.refresh_from_db()
    assert (volume.status, server.task_state, server.vm_state, sent) == (
        "in-use", None, "shelved_offloaded", [])
    assert [d.volume_id for d in server_volumes.block_devices_of(server)] == [str(volume.pk)]

    assert api.delete(_url(server, volume.pk), version="2.20").status_code == 202
    volume.refresh_from_db()
    assert (volume.status, volume.attach_status, sent) == ("available", "detached", [])
    assert server_volumes.block_devices_of(server) == []
