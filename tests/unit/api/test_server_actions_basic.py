"""POST /servers/{id}/action: the dispatcher, lock/unlock, os-resetState, and what a lock refuses."""

import uuid

import pytest

from cloud.compute.models import Instance, InstanceAction
from tests.factories import V, make_server


def _act(api, server, body, version=None):
    return api.post(f"{V}/servers/{server.uuid}/action", body, version=version)


def _locked(server) -> bool:
    return Instance.objects.get(pk=server.pk).locked


# --- the dispatcher


@pytest.mark.parametrize(
    "body",
    [{"reboot-everything": None}, {}, {"lock": None, "unlock": None}, [], "lock"],
    ids=["unknown", "empty", "two-actions", "array", "string"],
)
def test_a_body_that_names_no_single_known_action_is_400(member, api_as, body):
    server = make_server(member)
    response = _act(api_as(member), server, body)
    assert response.status_code == 400
    assert response.json()["badRequest"]["code"] == 400
    assert not InstanceAction.objects.filter(instance=server).exists()


def test_an_action_on_a_missing_server_is_404(member, api_as):
    response = api_as(member).post(f"{V}/servers/{uuid.uuid4()}/action", {"lock": None})
    assert response.status_code == 404
    assert "itemNotFound" in response.json()


# --- lock / unlock


@pytest.mark.parametrize("args", [None, {}])
def test_member_locks_and_unlocks_a_server(member, api_as, args):
    server = make_server(member)
    api = api_as(member)
    response = _act(api, server, {"lock": args})
    assert response.status_code == 202
    assert response.content == b""
    assert _locked(server)
    assert api.get(f"{V}/servers/{server.uuid}", version="2.9").json()["server"]["locked"] is True
    assert _act(api, server, {"unlock": args}).status_code == 202
    assert not _locked(server)
    assert api.get(f"{V}/servers/{server.uuid}", version="2.9").json()["server"]["locked"] is False


def test_lock_and_unlock_are_recorded_as_instance_actions(member, api_as):
    server = make_server(member)
    api = api_as(member)
    lock = _act(api, server, {"lock": None})
    unlock = _act(api, server, {"unlock": None})
    rows = list(InstanceAction.objects.filter(instance=server).order_by("start_time", "id"))
    assert [r.action for r in rows] == ["lock", "unlock"]
    assert rows[0].request_id == lock["X-OpenStack-Request-ID"]
    assert rows[1].request_id == unlock["X-OpenStack-Request-ID"]
    assert rows[0].user_id == member.user.id and rows[0].project_id == member.project.id


def test_locking_twice_and_unlocking_an_unlocked_server_are_accepted(member, api_as):
    server = make_server(member)
    api = api_as(member)
    assert _act(api, server, {"unlock": None}).status_code == 202
    assert _act(api, server, {"lock": None}).status_code == 202
    assert _act(api, server, {"lock": None}).status_code == 202
    assert _locked(server)


def test_lock_with_a_non_object_argument_is_400(member, api_as):
    server = make_server(member)
    assert _act(api_as(member), server, {"lock": "please"}).status_code == 400
    assert not _locked(server)


def test_reader_cannot_lock_or_unlock(reader, member, api_as):
    server = make_server(member)
    for body in ({"lock": None}, {"unlock": None}):
        response = _act(api_as(reader), server, body)
        assert response.status_code == 403
        assert "forbidden" in response.json()
    assert not _locked(server)


def test_another_project_cannot_lock_and_sees_404(other, member, api_as):
    server = make_server(member)
    assert _act(api_as(other), server, {"lock": None}).status_code == 404
    server.locked = True
    server.save()
    assert _act(api_as(other), server, {"unlock": None}).status_code == 404
    assert _locked(server)


def test_a_server_an_admin_locked_can_be_unlocked_only_by_an_admin(admin, member, api_as):
    server = make_server(member)
    assert _act(api_as(admin), server, {"lock": None}).status_code == 202
    response = _act(api_as(member), server, {"unlock": None})
    assert response.status_code == 403
    assert "administrator" in response.json()["forbidden"]["message"]
    assert _locked(server)
    assert _act(api_as(admin), server, {"unlock": None}).status_code == 202
    assert not _locked(server)


def test_a_members_second_lock_does_not_take_over_an_admins_lock(admin, member, api_as):
    server = make_server(member)
    _act(api_as(admin), server, {"lock": None})
    assert _act(api_as(member), server, {"lock": None}).status_code == 202
    assert _act(api_as(member), server, {"unlock": None}).status_code == 403


def test_a_server_a_member_locked_can_be_unlocked_by_another_member(member, api_as):
    from tests.personas import make_persona

    colleague = make_persona("dave", "alpha", ["member", "reader"])
    server = make_server(member)
    _act(api_as(member), server, {"lock": None})
    assert _act(api_as(colleague), server, {"unlock": None}).status_code == 202
    assert not _locked(server)


def test_a_locked_server_refuses_a_members_delete_but_not_an_admins(admin, member, api_as):
    server = make_server(member, host=None, node=None)
    _act(api_as(member), server, {"lock": None})
    response = api_as(member).delete(f"{V}/servers/{server.uuid}")
    assert response.status_code == 409
    assert response.json()["conflictingRequest"]["message"] == f"Instance {server.uuid} is locked"
    assert not Instance.objects.get(pk=server.pk).deleted
    assert api_as(admin).delete(f"{V}/servers/{server.uuid}").status_code == 204


def test_a_locked_server_still_shows_to_its_reader(reader, member, api_as):
    server = make_server(member, locked=True)
    assert api_as(reader).get(f"{V}/servers/{server.uuid}").status_code == 200


# --- os-resetState


@pytest.mark.parametrize(("state", "status"), [("error", "ERROR"), ("active", "ACTIVE")])
def test_admin_resets_a_servers_state_and_clears_its_task(admin, member, api_as, state, status):
    server = make_server(member, vm_state="building", task_state="spawning")
    response = _act(api_as(admin), server, {"os-resetState": {"state": state}})
    assert response.status_code == 202
    row = Instance.objects.get(pk=server.pk)
    assert row.vm_state == state and row.task_state is None
    shown = api_as(member).get(f"{V}/servers/{server.uuid}").json()["server"]
    assert shown["status"] == status
    action = InstanceAction.objects.get(instance=server)
    assert action.action == "resetState"
    assert action.request_id == response["X-OpenStack-Request-ID"]


def test_admin_may_reset_the_state_of_a_locked_server(admin, member, api_as):
    server = make_server(member, locked=True)
    assert _act(api_as(admin), server, {"os-resetState": {"state": "error"}}).status_code == 202


@pytest.mark.parametrize(
    "args",
    [{"state": "deleted"}, {"state": "ACTIVE"}, {}, {"state": "error", "extra": 1}, None, "error"],
)
def test_reset_state_takes_only_active_or_error(admin, member, api_as, args):
    server = make_server(member)
    response = _act(api_as(admin), server, {"os-resetState": args})
    assert response.status_code == 400
    assert Instance.objects.get(pk=server.pk).vm_state == "active"


def test_members_cannot_reset_state(member, api_as):
    server = make_server(member)
    response = _act(api_as(member), server, {"os-resetState": {"state": "error"}})
    assert response.status_code == 403
    assert Instance.objects.get(pk=server.pk).vm_state == "active"


def test_admin_can_reset_another_projects_server(admin, other, api_as):
    server = make_server(other)
    assert _act(api_as(admin), server, {"os-resetState": {"state": "error"}}).status_code == 202
    assert Instance.objects.get(pk=server.pk).vm_state == "error"
