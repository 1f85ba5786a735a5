"""Rescue, shelve, createBackup and trigger_crash_dump through POST /servers/{id}/action: the
task and status while each runs, what the host is asked, the host's report finishing it, Nova's
409 in a state that forbids it, and who may ask. Reports are applied through the conductor."""

from __future__ import annotations

import pytest

from cloud.compute.models import Allocation, ComputeNode, InstanceAction
from cloud.conductor.instance_events import apply_instance_event
from cloud.images.models import Image
from cloud.scheduler import manager as scheduler
from compute_agent import messages as msg
from tests.factories import V, give_address, host_up, make_server


@pytest.fixture
def server(member, image, db):
    return make_server(member, image_ref=str(image.id))


@pytest.fixture
def node(db):
    service = host_up("compute1")
    return ComputeNode.objects.create(service=service, host="compute1", hypervisor_hostname="compute1",
                                      vcpus=4, memory_mb=1024, local_gb=100)


def _act(api, server, body, version="2.60"):
    return api.post(f"{V}/servers/{server.uuid}/action", body, version=version)


def _report(server, event, host=None, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=host or server.host,
        event=event, **fields))
    server.refresh_from_db()


def _status(api, server):
    body = api.get(f"{V}/servers/{server.uuid}").json()["server"]
    return body["status"], body["OS-EXT-STS:task_state"]


def _actions(server):
    return list(InstanceAction.objects.filter(instance=server).values_list("action", flat=True))


# --- rescue


def test_rescue_boots_from_the_servers_own_image_and_unrescue_brings_it_back(
    member, api_as, server, image, sent
):
    api = api_as(member)
    response = _act(api, server, {"rescue": None})
    assert response.status_code == 200 and response.json() == {}
    assert _status(api, server) == ("ACTIVE", "rescuing")
    ((name, (payload,), queue),) = sent
    assert (name, queue) == (msg.TASK_RESCUE, "compute.compute1")
    assert payload["image"]["id"] == str(image.id)
    assert payload["spawn"]["instance_uuid"] == str(server.uuid)
    _report(server, msg.EVENT_RESCUED, power_state="running")
    assert _status(api, server) == ("RESCUE", None)
    assert _act(api, server, {"unrescue": None}).status_code == 202
    assert _status(api, server) == ("RESCUE", "unrescuing")
    assert sent[-1].name == msg.TASK_UNRESCUE
    _report(server, msg.EVENT_UNRESCUED, power_state="running")
    assert _status(api, server) == ("ACTIVE", None)
    assert _actions(server) == ["unrescue", "rescue"]


def test_rescue_takes_the_image_asked_for_and_answers_no_password(member, api_as, server, sent):
    other = Image.objects.create(name="rescue", status="active", disk_format="qcow2",
                                 container_format="bare", owner=member.project)
    response = _act(api_as(member), server, {"rescue": {"rescue_image_ref": str(other.id),
                                                        "adminPass": "s3cret"}})
    assert (response.status_code, response.json()) == (200, {})
    assert sent[0].args[0]["image"]["id"] == str(other.id)


def test_rescue_from_an_image_the_caller_cannot_see_is_400(member, other, api_as, server, sent):
    hidden = Image.objects.create(name="theirs", status="active", disk_format="qcow2",
                                  container_format="bare", owner=other.project)
    response = _act(api_as(member), server, {"rescue": {"rescue_image_ref": str(hidden.id)}})
    assert response.status_code == 400
    server.refresh_from_db()
    assert server.task_state is None and sent == []


def test_a_failed_rescue_leaves_the_server_as_it_was_with_a_fault(member, api_as, server, sent):
    _act(api_as(member), server, {"rescue": None})
    _report(server, msg.EVENT_ACTION_FAILED, action=msg.ACTION_RESCUE, message="no room",
            power_state="running")
    assert (server.vm_state, server.task_state) == ("active", None)
    assert server.faults.first().message == "no room"


# --- shelve


def test_shelve_saves_the_disk_to_an_image_and_offloads_at_once_by_default(
    member, api_as, server, node, sent
):
    Allocation.objects.create(instance=server, node=node, vcpus=1, memory_mb=128, disk_gb=1)
    ComputeNode.objects.filter(pk=node.pk).update(vcpus_used=1, memory_mb_used=128, local_gb_used=1)
    api = api_as(member)
    assert _act(api, server, {"shelve": None}).status_code == 202
    assert _status(api, server) == ("ACTIVE", "shelving")
    server.refresh_from_db()
    image = Image.objects.get(pk=server.shelved_image_id)
    assert (image.name, image.status) == ("vm1-shelved", "queued")
    ((name, (payload,), _),) = sent
    assert name == msg.TASK_SHELVE and payload["offload"] is True
    assert payload["image_id"] == str(image.id) and payload["token"]
    port = give_address(server)
    port.status = "ACTIVE"
    port.save()
    _report(server, msg.EVENT_SHELVE_OFFLOADED, image_id=str(image.id), power_state="nostate")
    assert _status(api, server) == ("SHELVED_OFFLOADED", None)
    port.refresh_from_db()
    assert port.status == "DOWN"  # nothing holds it while the server has no host
    assert (server.host, server.node) == (None, None)
    assert not Allocation.objects.filter(instance=server).exists()
    node.refresh_from_db()
    assert (node.vcpus_used, node.memory_mb_used) == (0, 0)


def test_with_offload_off_a_shelved_server_stays_on_its_host_until_shelve_offload(
    member, admin, api_as, server, sent, settings
):
    settings.KUMO_SHELVED_OFFLOAD_TIME = -1
    _act(api_as(member), server, {"shelve": None})
    assert sent[0].args[0]["offload"] is False
    _report(server, msg.EVENT_SHELVED, power_state="shutdown")
    assert (server.status, server.host) == ("SHELVED", "compute1")
    assert _act(api_as(member), server, {"shelveOffload": None}).status_code == 403
    assert _act(api_as(admin), server, {"shelveOffload": None}).status_code == 202
    assert sent[-1].name == msg.TASK_SHELVE_OFFLOAD
    _report(server, msg.EVENT_SHELVE_OFFLOADED, power_state="nostate")
    assert (server.status, server.host) == ("SHELVED_OFFLOADED", None)


def test_unshelve_on_its_host_starts_it_there_and_drops_the_shelve_image(
    member, api_as, server, image, sent
):
    shelved = Image.objects.create(name="vm1-shelved", status="active", disk_format="qcow2",
                                   container_format="bare", owner=member.project)
    server.vm_state, server.shelved_image_id, server.power_state = "shelved", str(shelved.id), "shutdown"
    server.save()
    api = api_as(member)
    assert _act(api, server, {"unshelve": None}).status_code == 202
    assert _status(api, server) == ("SHELVED", "unshelving")
    assert sent[0].name == msg.TASK_UNSHELVE
    _report(server, msg.EVENT_UNSHELVED, power_state="running")
    assert (server.status, server.shelved_image_id) == ("ACTIVE", "")
    assert not Image.objects.filter(pk=shelved.id).exists()


def test_an_offloaded_server_unshelves_through_the_scheduler_from_its_shelve_image(
    member, api_as, image, node, sent, tiny
):
    shelved = Image.objects.create(name="vm1-shelved", status="active", disk_format="qcow2",
                                   container_format="bare", owner=member.project)
    server = make_server(member, image_ref=str(image.id), vm_state="shelved_offloaded",
                         host=None, node=None, power_state="nostate", flavor=tiny,
                         shelved_image_id=str(shelved.id))
    api = api_as(member)
    assert _act(api, server, {"unshelve": None}).status_code == 202
    assert _status(api, server) == ("SHELVED_OFFLOADED", "unshelving")  # Nova's words
    ((name, (instance_uuid, *_), _),) = sent
    assert (name, instance_uuid) == ("scheduler.schedule_instance", str(server.uuid))
    scheduler.schedule_instance(str(server.uuid), "req-test")
    server.refresh_from_db()
    assert (server.host, server.task_state) == ("compute1", "spawning")
    assert _status(api, server) == ("SHELVED_OFFLOADED", "unshelving")
    spawn = sent[-1].args[0]
    assert sent[-1].name == msg.TASK_SPAWN and spawn["restore_from"]["id"] == str(shelved.id)
    port = give_address(server)
    _report(server, msg.EVENT_SPAWNED, power_state="running")
    assert (server.status, server.shelved_image_id) == ("ACTIVE", "")
    port.refresh_from_db()
    assert port.status == "ACTIVE"
    assert not Image.objects.filter(pk=shelved.id).exists()
    assert "unshelve" in _actions(server)


def test_an_offloaded_server_with_no_room_anywhere_stays_shelved(member, api_as, image, sent):
    server = make_server(member, image_ref=str(image.id), vm_state="shelved_offloaded",
                         host=None, node=None, shelved_image_id="x")
    _act(api_as(member), server, {"unshelve": None})
    scheduler.schedule_instance(str(server.uuid), "req-test", wait_for_hosts=False)
    server.refresh_from_db()
    assert (server.status, server.task_state) == ("SHELVED_OFFLOADED", None)


def test_unshelve_to_a_zone_and_host_from_2_91_host_for_admins_only(
    member, admin, api_as, image, node, sent, mv2104
):
    server = make_server(member, image_ref=str(image.id), vm_state="shelved_offloaded",
                         host=None, node=None)
    body = {"unshelve": {"host": "compute1"}}
    assert _act(api_as(member), server, body, version="2.91").status_code == 403
    assert _act(api_as(admin), server, {"unshelve": {"host": "nowhere"}},
                version="2.91").status_code == 400
    assert _act(api_as(admin), server, body, version="2.90").status_code == 400  # no host < 2.91
    assert _act(api_as(admin), server, {"unshelve": {"availability_zone": None, "host": "compute1"}},
                version="2.91").status_code == 202
    server.refresh_from_db()
    assert (server.requested_host, server.availability_zone) == ("compute1", None)


def test_unshelve_with_a_zone_is_only_for_an_offloaded_server(member, api_as, server, sent, mv2104):
    server.vm_state = "shelved"
    server.save()
    response = _act(api_as(member), server, {"unshelve": {"availability_zone": "nova"}},
                    version="2.77")
    assert response.status_code == 400 and sent == []
    assert _act(api_as(member), server, {"unshelve": {}}, version="2.77").status_code == 400


# --- createBackup


def _backup(api, server, rotation, version="2.60", backup_type="daily"):
    return _act(api, server, {"createBackup": {"name": f"b-{rotation}", "backup_type": backup_type,
                                               "rotation": rotation}}, version=version)


def _finish_backup(server, image_id):
    Image.objects.filter(pk=image_id).update(status="active")
    _report(server, msg.EVENT_BACKUP_UPLOADED, image_id=image_id, power_state="running")


def test_backups_keep_the_newest_of_their_type_as_the_rotation_says(member, api_as, server, sent):
    api = api_as(member)
    weekly = _backup(api, server, 5, version="2.45", backup_type="weekly").json()["image_id"]
    _finish_backup(server, weekly)
    kept = []
    for _ in range(3):
        response = _backup(api, server, 2, version="2.45")
        assert response.status_code == 202
        assert _status(api, server) == ("ACTIVE", "image_backup")
        assert sent[-1].name == msg.TASK_BACKUP
        image_id = response.json()["image_id"]
        image = Image.objects.get(pk=image_id)
        assert (image.properties["image_type"], image.properties["backup_type"]) == (
            "backup", "daily")
        _finish_backup(server, image_id)
        kept.append(image_id)
    daily = Image.objects.filter(properties__backup_type="daily")
    assert set(map(str, daily.values_list("pk", flat=True))) == set(kept[-2:])
    assert Image.objects.filter(pk=weekly).exists()  # another type, its own rotation


def test_a_server_is_deleted_during_its_backup_and_the_late_report_changes_nothing(
    member, api_as, server, sent
):
    api = api_as(member)
    image_id = _backup(api, server, 2, version="2.47").json()["image_id"]
    assert _status(api, server) == ("ACTIVE", "image_backup")
    assert api.delete(f"{V}/servers/{server.uuid}").status_code == 204
    assert _status(api, server)[1] == "deleting"
    assert sent[-1].name == msg.TASK_DESTROY
    _finish_backup(server, image_id)  # the host finished the backup before the destroy
    assert server.task_state == "deleting"
    _report(server, msg.EVENT_DESTROYED, power_state="nostate")
    assert server.deleted and Image.objects.get(pk=image_id).status == "active"


def test_a_backup_before_2_45_answers_a_location_unless_nothing_is_kept(member, api_as, server, sent):
    response = _backup(api_as(member), server, 1, version="2.44")
    assert response.status_code == 202 and "/images/" in response["Location"]
    _finish_backup(server, sent[-1].args[0]["image_id"])
    response = _backup(api_as(member), server, 0, version="2.44")
    assert response.status_code == 202 and "Location" not in response


@pytest.mark.parametrize("body", [{"name": "b", "backup_type": "daily"},
                                  {"name": "b", "backup_type": "daily", "rotation": -1},
                                  {"name": "b", "backup_type": "daily", "rotation": "x"}])
def test_a_backup_without_a_valid_rotation_is_400(member, api_as, server, sent, body):
    assert _act(api_as(member), server, {"createBackup": body}).status_code == 400
    assert sent == []


def test_a_failed_backup_kills_its_image(member, api_as, server, sent):
    image_id = _backup(api_as(member), server, 1, version="2.45").json()["image_id"]
    _report(server, msg.EVENT_ACTION_FAILED, action=msg.ACTION_BACKUP, message="disk gone",
            power_state="running")
    assert Image.objects.get(pk=image_id).status == "killed"
    assert (server.task_state, server.backup_rotation) == (None, None)


# --- trigger_crash_dump


def test_a_crash_dump_is_asked_of_the_host_from_2_17_and_recorded(member, api_as, server, sent):
    api = api_as(member)
    assert _act(api, server, {"trigger_crash_dump": None}, version="2.16").status_code == 400
    assert _act(api, server, {"trigger_crash_dump": None}, version="2.17").status_code == 202
    assert sent[0].name == msg.TASK_TRIGGER_CRASH_DUMP
    server.refresh_from_db()
    assert server.task_state is None  # Nova holds no task for it
    _report(server, msg.EVENT_CRASH_DUMP_TRIGGERED, power_state="running")
    action = InstanceAction.objects.get(instance=server, action="trigger_crash_dump")
    assert action.events.get().result == "Success"


# --- every action's wrong states and policy


@pytest.mark.parametrize(
    "vm_state, body",
    [
        ("paused", {"rescue": None}),
        ("active", {"unrescue": None}),
        ("rescued", {"shelve": None}),
        ("active", {"shelveOffload": None}),
        ("active", {"unshelve": None}),
        ("shelved", {"createBackup": {"name": "b", "backup_type": "d", "rotation": 1}}),
        ("stopped", {"trigger_crash_dump": None}),
    ],
)
def test_an_action_the_state_forbids_is_409_and_changes_nothing(
    member, admin, api_as, sent, image, vm_state, body
):
    server = make_server(member, vm_state=vm_state, image_ref=str(image.id))
    response = _act(api_as(admin), server, body, version="2.17")
    assert response.status_code == 409, response.content
    assert "Cannot" in response.json()["conflictingRequest"]["message"]
    server.refresh_from_db()
    assert (server.vm_state, server.task_state) == (vm_state, None)
    assert sent == [] and not Image.objects.exclude(pk=image.pk).exists()


@pytest.mark.parametrize("body", [{"rescue": None}, {"shelve": None}, {"trigger_crash_dump": None},
                                  {"createBackup": {"name": "b", "backup_type": "d", "rotation": 1}}])
def test_readers_may_not_and_another_projects_server_is_404(
    reader, other, api_as, server, sent, body
):
    assert _act(api_as(reader), server, body, version="2.17").status_code == 403
    assert _act(api_as(other), server, body, version="2.17").status_code == 404
    assert sent == []


def test_deleting_a_shelved_server_deletes_its_shelve_image(member, api_as, image, sent):
    shelved = Image.objects.create(name="vm1-shelved", status="active", disk_format="qcow2",
                                   container_format="bare", owner=member.project)
    server = make_server(member, image_ref=str(image.id), vm_state="shelved_offloaded",
                         host=None, node=None, shelved_image_id=str(shelved.id))
    assert api_as(member).delete(f"{V}/servers/{server.uuid}").status_code == 204
    server.refresh_from_db()
    assert server.deleted and not Image.objects.filter(pk=shelved.id).exists()
    assert Image.objects.filter(pk=image.id).exists()


def test_a_positive_offload_time_offloads_shelved_servers_once_it_has_passed(
    member, api_as, image, sent, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from cloud.compute.models import Instance
    from cloud.conductor.reconciler import reconcile

    settings.KUMO_SHELVED_OFFLOAD_TIME = 600
    long_ago = timezone.now() - timedelta(seconds=601)
    due = make_server(member, "due", image_ref=str(image.id), vm_state="shelved")
    fresh = make_server(member, "fresh", image_ref=str(image.id), vm_state="shelved")
    silent = make_server(member, "silent", image_ref=str(image.id), vm_state="shelved",
                         host="compute9")
    host_up("compute9", False)
    Instance.objects.filter(pk__in=[due.pk, silent.pk]).update(updated_at=long_ago)
    assert reconcile().get("shelved servers offloaded") == 1
    for row in (due, fresh, silent):
        row.refresh_from_db()
    assert (due.task_state, fresh.task_state, silent.task_state) == (
        "shelving_offloading", None, None)
    assert [(m.name, m.queue) for m in sent] == [(msg.TASK_SHELVE_OFFLOAD, "compute.compute1")]
    _report(due, msg.EVENT_SHELVE_OFFLOADED, power_state="nostate")
    assert (due.status, due.host) == ("SHELVED_OFFLOADED", None)
    assert "shelveOffload" in _actions(due)


def test_unshelve_to_a_zone_from_2_77_pins_the_server_there(member, api_as, image, node, sent,
                                                             mv2104):
    server = make_server(member, image_ref=str(image.id), vm_state="shelved_offloaded",
                         host=None, node=None)
    api = api_as(member)
    assert _act(api, server, {"unshelve": {"availability_zone": "elsewhere"}},
                version="2.77").status_code == 400
    assert _act(api, server, {"unshelve": {"availability_zone": "nova"}},
                version="2.76").status_code == 202  # ignored below 2.77, as Nova
    server.refresh_from_db()
    assert server.availability_zone is None
    server.task_state = None
    server.save()
    assert _act(api, server, {"unshelve": {"availability_zone": "nova"}},
                version="2.77").status_code == 202
    server.refresh_from_db()
    assert (server.availability_zone, server.task_state) == ("nova", "scheduling")
