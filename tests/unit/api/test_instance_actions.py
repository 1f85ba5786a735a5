"""/servers/{id}/os-instance-actions[/{request_id}]: a server's history, per microversion."""

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from cloud.compute.models import InstanceAction, InstanceActionEvent
from tests.factories import V, make_server

LIST_KEYS = {"action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message"}
EVENT_KEYS = {"event", "start_time", "finish_time", "result", "traceback"}


def _url(server, request_id=None):
    base = f"{V}/servers/{server.uuid}/os-instance-actions"
    return base if request_id is None else f"{base}/{request_id}"


def _history(owner, server, count=1):
    """`count` actions, oldest first, a minute apart; the first is the create with one event."""
    start = timezone.now() - timedelta(hours=1)
    rows = []
    for i in range(count):
        row = InstanceAction.objects.create(
            instance=server, action="create" if i == 0 else f"action-{i}",
            request_id=f"req-{i}", user_id=owner.user.id, project_id=owner.project.id,
        )
        InstanceAction.objects.filter(pk=row.pk).update(
            start_time=start + timedelta(minutes=i), updated_at=start + timedelta(minutes=i)
        )
        row.refresh_from_db()
        rows.append(row)
    InstanceActionEvent.objects.create(
        action=rows[0], event="compute_spawn", result="Success", finish_time=timezone.now(),
        traceback="Traceback: secret host detail", host="compute1",
    )
    return rows


@pytest.fixture
def server(member):
    return make_server(member)


def test_reader_lists_a_servers_actions_newest_first(reader, member, server, api_as):
    _history(member, server, 3)
    response = api_as(reader).get(_url(server))
    assert response.status_code == 200
    actions = response.json()["instanceActions"]
    assert [a["request_id"] for a in actions] == ["req-2", "req-1", "req-0"]
    assert set(actions[-1]) == LIST_KEYS
    assert actions[-1] == {
        "action": "create", "instance_uuid": str(server.uuid), "request_id": "req-0",
        "user_id": member.user.id, "project_id": member.project.id,
        "start_time": actions[-1]["start_time"], "message": None,
    }
    assert set(response.json()) == {"instanceActions"}


def test_actions_taken_through_the_api_appear_in_the_list(member, server, api_as):
    api = api_as(member)
    lock = api.post(f"{V}/servers/{server.uuid}/action", {"lock": None})
    unlock = api.post(f"{V}/servers/{server.uuid}/action", {"unlock": None})
    actions = api.get(_url(server)).json()["instanceActions"]
    assert [(a["action"], a["request_id"]) for a in actions] == [
        ("unlock", unlock["X-OpenStack-Request-ID"]),
        ("lock", lock["X-OpenStack-Request-ID"]),
    ]


def test_updated_at_appears_from_258(member, server, api_as):
    _history(member, server)
    api = api_as(member)
    (at257,) = api.get(_url(server), version="2.57").json()["instanceActions"]
    (at258,) = api.get(_url(server), version="2.58").json()["instanceActions"]
    assert set(at257) == LIST_KEYS
    assert set(at258) == LIST_KEYS | {"updated_at"}
    shown = api.get(_url(server, "req-0"), version="2.58").json()["instanceAction"]
    assert "updated_at" in shown
    assert "updated_at" not in api.get(_url(server, "req-0"), version="2.57").json()["instanceAction"]


def test_paging_with_limit_and_marker_from_258(member, server, api_as):
    _history(member, server, 5)
    api = api_as(member)
    page = api.get(_url(server) + "?limit=2", version="2.58").json()
    assert [a["request_id"] for a in page["instanceActions"]] == ["req-4", "req-3"]
    assert "marker=req-3" in page["links"][0]["href"] and page["links"][0]["rel"] == "next"
    rest = api.get(_url(server) + "?limit=10&marker=req-3", version="2.58").json()
    assert [a["request_id"] for a in rest["instanceActions"]] == ["req-2", "req-1", "req-0"]
    assert "links" not in rest
    assert api.get(_url(server) + "?marker=req-404", version="2.58").status_code == 400
    assert api.get(_url(server) + "?limit=-1", version="2.58").status_code == 400


def test_changes_since_filters_from_258(member, server, api_as):
    rows = _history(member, server, 3)
    since = rows[2].updated_at.isoformat()
    api = api_as(member)
    response = api.get(_url(server) + "?changes-since=" + quote(since), version="2.58")
    assert [a["request_id"] for a in response.json()["instanceActions"]] == ["req-2"]


def test_paging_parameters_are_ignored_before_258(member, server, api_as):
    _history(member, server, 3)
    response = api_as(member).get(_url(server) + "?limit=1&marker=nope", version="2.57")
    assert response.status_code == 200
    assert len(response.json()["instanceActions"]) == 3


def test_show_answers_one_action_without_events_for_a_member_before_251(member, server, api_as):
    _history(member, server)
    response = api_as(member).get(_url(server, "req-0"))
    assert response.status_code == 200
    action = response.json()["instanceAction"]
    assert set(action) == LIST_KEYS
    assert action["action"] == "create" and action["instance_uuid"] == str(server.uuid)


def test_admin_sees_events_with_traceback_before_251(admin, member, server, api_as):
    _history(member, server)
    action = api_as(admin).get(_url(server, "req-0")).json()["instanceAction"]
    (event,) = action["events"]
    assert set(event) == EVENT_KEYS
    assert event["event"] == "compute_spawn" and event["result"] == "Success"
    assert event["traceback"] == "Traceback: secret host detail"
    assert event["finish_time"] is not None


def test_from_251_everyone_sees_events_but_only_admins_the_traceback(admin, reader, member, server, api_as):
    _history(member, server)
    (seen_by_reader,) = api_as(reader).get(_url(server, "req-0"), version="2.51").json()[
        "instanceAction"]["events"]
    # As Nova: the traceback is left out for whoever may not see it.
    assert set(seen_by_reader) == EVENT_KEYS - {"traceback"}
    (seen_by_admin,) = api_as(admin).get(_url(server, "req-0"), version="2.51").json()[
        "instanceAction"]["events"]
    assert seen_by_admin["traceback"] == "Traceback: secret host detail"


def test_an_action_without_events_shows_an_empty_event_list_from_251(member, server, api_as):
    _history(member, server, 2)
    action = api_as(member).get(_url(server, "req-1"), version="2.51").json()["instanceAction"]
    assert action["events"] == []


def test_an_unknown_request_id_is_404(member, server, api_as):
    _history(member, server)
    response = api_as(member).get(_url(server, "req-unknown"))
    assert response.status_code == 404
    assert "itemNotFound" in response.json()


def test_another_projects_server_is_404_like_a_missing_one(other, member, server, api_as):
    _history(member, server)
    api = api_as(other)
    assert api.get(_url(server)).status_code == 404
    assert api.get(_url(server, "req-0")).status_code == 404
    assert api.get(f"{V}/servers/{uuid.uuid4()}/os-instance-actions").status_code == 404
    assert api.get(f"{V}/servers/not-a-uuid/os-instance-actions").status_code == 404


def test_admin_reads_another_projects_history(admin, other, api_as):
    server = make_server(other)
    _history(other, server)
    assert len(api_as(admin).get(_url(server)).json()["instanceActions"]) == 1


def test_a_deleted_servers_history_is_readable_from_221(reader, member, api_as):
    server = make_server(member, deleted=True, vm_state="deleted")
    _history(member, server, 2)
    api = api_as(reader)
    assert api.get(_url(server), version="2.20").status_code == 404
    assert api.get(_url(server, "req-0"), version="2.20").status_code == 404
    listed = api.get(_url(server), version="2.21").json()["instanceActions"]
    assert [a["request_id"] for a in listed] == ["req-1", "req-0"]
    shown = api.get(_url(server, "req-0"), version="2.21")
    assert shown.status_code == 200


def test_another_projects_deleted_server_stays_404_from_221(other, member, api_as):
    server = make_server(member, deleted=True, vm_state="deleted")
    _history(member, server)
    assert api_as(other).get(_url(server), version="2.21").status_code == 404
