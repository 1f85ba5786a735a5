"""Guest actions through POST /servers/{id}/action: which states allow each, the task and status
shown while it runs, the message sent to the host (after commit), and the host's report finishing
it. Reports are applied through the conductor's own service function."""

from __future__ import annotations

import pytest

from cloud.compute.models import Allocation, ComputeNode, Flavor, Instance, InstanceAction
from cloud.conductor.instance_events import apply_instance_event
from cloud.images.models import Image
from compute_agent import messages as msg
from tests.factories import V, host_up, make_server


@pytest.fixture
def server(member, db):
    return make_server(member)


def _act(api, server, body, version="2.60"):
    return api.post(f"{V}/servers/{server.uuid}/action", body, version=version)


def _report(server, event, **fields):
    apply_instance_event(msg.InstanceEvent(
        request_id="req-test", instance_uuid=str(server.uuid), host=server.host, event=event,
        **fields))
    server.refresh_from_db()


@pytest.mark.parametrize(
    "body, task, status, event, vm_state, power",
    [
        ({"os-stop": None}, "powering-off", "ACTIVE", msg.EVENT_STOPPED, "stopped", "shutdown"),
        ({"pause": None}, "pausing", "ACTIVE", msg.EVENT_PAUSED, "paused", "paused"),
        ({"suspend": None}, "suspending", "ACTIVE", msg.EVENT_SUSPENDED, "suspended", "suspended"),
        ({"reboot": {"type": "SOFT"}}, "rebooting", "REBOOT", msg.EVENT_REBOOTED, "active", "running"),
        ({"reboot": {"type": "HARD"}}, "rebooting_hard", "HARD_REBOOT", msg.EVENT_REBOOTED, "active",
         "running"),
    ],
)
def test_an_action_runs_as_a_task_until_the_host_reports(
    member, api_as, server, sent, body, task, status, event, vm_state, power,
):
    api = api_as(member)
    assert _act(api, server, body).status_code == 202
    server.refresh_from_db()
    assert server.task_state == task
    assert api.get(f"{V}/servers/{server.uuid}").json()["server"]["status"] == status
    ((name, (payload,), queue),) = sent
    assert queue == "compute.compute1" and payload["instance_uuid"] == str(server.uuid)
    assert name.startswith("compute.")
    _report(server, event, power_state=power)
    assert (server.vm_state, server.task_state, server.power_state) == (vm_state, None, power)
    assert InstanceAction.objects.filter(instance=server).exists()


def test_start_and_unpause_and_resume_return_to_active(member, api_as, sent, db):
    api = api_as(member)
    for vm_state, action, event in (("stopped", "os-start", msg.EVENT_STARTED),
                                    ("paused", "unpause", msg.EVENT_UNPAUSED),
                                    ("suspended", "resume", msg.EVENT_RESUMED)):
        server = make_server(member, name=action, vm_state=vm_state)
        assert _act(api, server, {action: None}).status_code == 202
        _report(server, event, power_state="running")
        assert (server.vm_state, server.task_state) == ("active", None)


@pytest.mark.parametrize(
    "vm_state, body",
    [
        ("stopped", {"os-stop": None}),
        ("active", {"os-start": None}),
        ("active", {"unpause": None}),
        ("paused", {"pause": None}),
        ("stopped", {"reboot": {"type": "SOFT"}}),
        ("building", {"reboot": {"type": "HARD"}}),
        ("active", {"resume": None}),
        ("active", {"confirmResize": None}),
        ("active", {"revertResize": None}),
    ],
)
def test_an_action_the_state_forbids_is_409_and_changes_nothing(member, api_as, sent, db, vm_state, body):
    server = make_server(member, vm_state=vm_state)
    response = _act(api_as(member), server, body)
    assert response.status_code == 409
    assert "Cannot" in response.json()["conflictingRequest"]["message"]
    server.refresh_from_db()
    assert server.vm_state == vm_state and server.task_state is None
    assert sent == []


def test_a_second_action_while_one_runs_is_409(member, api_as, server, sent):
    api = api_as(member)
    assert _act(api, server, {"os-stop": None}).status_code == 202
    assert _act(api, server, {"pause": None}).status_code == 409


def test_a_stale_or_repeated_report_changes_nothing(member, api_as, server, sent):
    assert _act(api_as(member), server, {"pause": None}).status_code == 202
    _report(server, msg.EVENT_STOPPED, power_state="shutdown")  # not the running task
    assert (server.vm_state, server.task_state) == ("active", "pausing")
    _report(server, msg.EVENT_PAUSED, power_state="paused")
    _report(server, msg.EVENT_PAUSED, power_state="paused")
    assert (server.vm_state, server.task_state) == ("paused", None)


def test_a_failed_action_clears_the_task_and_leaves_a_fault(member, api_as, server, sent):
    assert _act(api_as(member), server, {"pause": None}).status_code == 202
    _report(server, msg.EVENT_ACTION_FAILED, action=msg.ACTION_PAUSE, message="libvirt said no",
            power_state="running")
    assert (server.vm_state, server.task_state) == ("active", None)
    assert server.faults.first().message == "libvirt said no"


def test_reader_may_not_act_and_locked_server_refuses_members(member, reader, admin, api_as, server, sent):
    assert _act(api_as(reader), server, {"os-stop": None}).status_code == 403
    assert _act(api_as(admin), server, {"lock": None}).status_code == 202
    assert _act(api_as(member), server, {"os-stop": None}).status_code == 409
    assert sent == []


@pytest.mark.parametrize("body", [{"reboot": {"type": "GENTLE"}}, {"reboot": {}}, {"os-stop": {"x": 1}},
                                  {"resize": {}}, {"rebuild": {}}, {"createImage": {}}])
def test_malformed_action_bodies_are_400(member, api_as, server, sent, body):
    assert _act(api_as(member), server, body).status_code == 400


@pytest.fixture
def host(db):
    service = host_up("compute1")
    return ComputeNode.objects.create(service=service, host="compute1", hypervisor_hostname="compute1",
                                      vcpus=4, memory_mb=1024, local_gb=100)


def _claimed(server, node):
    Allocation.objects.create(instance=server, node=node, vcpus=1, memory_mb=128, disk_gb=1)
    ComputeNode.objects.filter(pk=node.pk).update(vcpus_used=1, memory_mb_used=128, local_gb_used=1)


def test_resize_grows_the_claim_then_confirm_keeps_it(member, api_as, server, host, sent):
    Flavor.objects.create(flavorid="2", name="m1.small", vcpus=2, memory_mb=512, root_gb=10)
    _claimed(server, host)
    api = api_as(member)
    assert _act(api, server, {"resize": {"flavorRef": "2"}}).status_code == 202
    assert api.get(f"{V}/servers/{server.uuid}").json()["server"]["status"] == "RESIZE"
    host.refresh_from_db()
    assert (host.vcpus_used, host.memory_mb_used) == (2, 512)
    _report(server, msg.EVENT_RESIZED, power_state="running")
    assert server.status == "VERIFY_RESIZE"
    assert _act(api, server, {"confirmResize": None}).status_code == 204
    server.refresh_from_db()
    assert server.status == "ACTIVE" and server.flavor_snapshot["id"] == "2"
    assert server.old_flavor_snapshot is None


def test_revert_resize_gives_back_the_growth(member, api_as, server, host, sent):
    Flavor.objects.create(flavorid="2", name="m1.small", vcpus=2, memory_mb=512, root_gb=10)
    _claimed(server, host)
    api = api_as(member)
    _act(api, server, {"resize": {"flavorRef": "2"}})
    _report(server, msg.EVENT_RESIZED, power_state="running")
    assert _act(api, server, {"revertResize": None}).status_code == 202
    assert api.get(f"{V}/servers/{server.uuid}").json()["server"]["status"] == "REVERT_RESIZE"
    _report(server, msg.EVENT_RESIZED, power_state="running")
    assert server.status == "ACTIVE" and server.flavor_snapshot["id"] == "1"
    host.refresh_from_db()
    assert (host.vcpus_used, host.memory_mb_used) == (1, 128)


def test_resize_without_room_on_the_host_is_409_and_changes_nothing(member, api_as, server, host, sent):
    Flavor.objects.create(flavorid="9", name="huge", vcpus=1, memory_mb=4096, root_gb=10)
    _claimed(server, host)
    assert _act(api_as(member), server, {"resize": {"flavorRef": "9"}}).status_code == 409
    server.refresh_from_db()
    assert server.task_state is None and server.flavor_snapshot["id"] == "1"
    host.refresh_from_db()
    assert host.memory_mb_used == 128
    assert sent == []


def test_resize_to_the_same_flavor_is_400(member, api_as, server, sent):
    Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)
    assert _act(api_as(member), server, {"resize": {"flavorRef": "1"}}).status_code == 400


def test_create_image_makes_a_queued_image_and_asks_the_host_to_upload(member, api_as, server, sent):
    api = api_as(member)
    response = _act(api, server, {"createImage": {"name": "snap1"}}, version="2.45")
    assert response.status_code == 202
    image = Image.objects.get(pk=response.json()["image_id"])
    assert (image.name, image.status, str(image.owner_id)) == ("snap1", "queued", member.project.id)
    ((name, (payload,), _),) = sent
    assert name == msg.TASK_SNAPSHOT and payload["image_id"] == str(image.id)
    assert payload["upload_url"].endswith(f"/image/v2/images/{image.id}/file") and payload["token"]
    old = _act(api, server, {"createImage": {"name": "snap2"}}, version="2.1")
    assert old.status_code == 409  # one snapshot at a time
    _report(server, msg.EVENT_SNAPSHOT_UPLOADED, image_id=str(image.id), power_state="running")
    assert (server.vm_state, server.task_state) == ("active", None)
    legacy = _act(api, server, {"createImage": {"name": "snap3"}}, version="2.1")
    assert legacy.status_code == 202 and "/images/" in legacy["Location"] and not legacy.content


def test_rebuild_changes_the_image_and_shows_rebuild(member, api_as, server, sent):
    image = Image.objects.create(name="new", status="active", disk_format="qcow2",
                                 container_format="bare", owner=member.project)
    api = api_as(member)
    response = _act(api, server, {"rebuild": {"imageRef": str(image.id), "name": "again"}})
    assert response.status_code == 202
    body = response.json()["server"]
    assert body["status"] == "REBUILD" and body["name"] == "again" and body["image"]["id"] == str(image.id)
    _report(server, msg.EVENT_REBUILT, power_state="running")
    assert (server.vm_state, server.task_state, server.image_ref) == ("active", None, str(image.id))


@pytest.mark.parametrize("body", [{"createImage": {"name": "snap"}},
                                  {"createBackup": {"name": "b", "backup_type": "daily",
                                                    "rotation": 1}}])
def test_images_of_a_servers_disk_are_private_to_its_project_as_nova_makes_them(
    member, api_as, server, sent, body
):
    image_id = _act(api_as(member), server, body, version="2.45").json()["image_id"]
    image = Image.objects.get(pk=image_id)
    assert (image.visibility, image.owner_id) == ("private", member.project.id)
    listed = api_as(member).get("/image/v2/images?visibility=shared&member_status=pending")
    assert listed.json()["images"] == []


def test_an_admins_snapshot_of_another_projects_server_is_offered_to_that_project(
    member, api_as, server, sent
):
    from tests.personas import make_persona

    operator = make_persona("root", "ops", ["admin", "member", "reader"])
    image_id = _act(api_as(operator), server, {"createImage": {"name": "s"}},
                    version="2.45").json()["image_id"]
    image = Image.objects.get(pk=image_id)
    assert (image.visibility, image.owner_id) == ("shared", operator.project.id)
    assert [(m.project_id, m.status) for m in image.members.all()] == [
        (member.project.id, "pending")]


def test_a_stopped_server_is_rebuilt_stopped(member, api_as, server, sent):
    Instance.objects.filter(pk=server.pk).update(vm_state="stopped", power_state="shutdown")
    image = Image.objects.create(name="new", status="active", disk_format="qcow2",
                                 container_format="bare", owner=member.project)
    api = api_as(member)
    response = _act(api, server, {"rebuild": {"imageRef": str(image.id)}})
    assert response.status_code == 202 and response.json()["server"]["status"] == "REBUILD"
    _report(server, msg.EVENT_REBUILT, power_state="shutdown")
    assert (server.vm_state, server.task_state) == ("stopped", None)
    assert api.get(f"{V}/servers/{server.uuid}").json()["server"]["status"] == "SHUTOFF"


def test_console_output_is_asked_of_the_host_and_returned(member, api_as, server, monkeypatch):
    from django.core.cache import cache

    from cloud import rpc
    from cloud.compute.guest_operations import console_key

    def host_answers(name, args, queue, **_):
        cache.set(console_key(args[0]["request_id"]), {"output": "KUMO TINY GUEST\nlogin:"}, 60)

    monkeypatch.setattr(rpc.app, "send_task", host_answers)
    response = _act(api_as(member), server, {"os-getConsoleOutput": {"length": 5}})
    assert response.status_code == 200
    assert response.json() == {"output": "KUMO TINY GUEST\nlogin:"}
