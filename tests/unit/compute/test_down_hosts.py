"""A host that stops reporting: its servers say so, what needs the host is refused with a reason
instead of waiting forever, and a delete completes without it (Nova's local delete); the host
destroys the leftover domain when it comes back (tests/unit/conductor/test_host_report.py)."""

from __future__ import annotations

import pytest

from cloud.compute import hosts, states
from cloud.compute.models import Instance
from compute_agent import messages as msg
from tests.factories import V, host_up, make_server

pytestmark = pytest.mark.django_db


def _act(api, server, body):
    return api.post(f"{V}/servers/{server.uuid}/action", body, version="2.60")


def test_host_status_follows_the_heartbeats_as_nova_words_it():
    service = host_up("compute1")
    assert hosts.host_status(service) == hosts.HOST_UP
    service.disabled = True
    assert hosts.host_status(service) == hosts.HOST_MAINTENANCE
    assert hosts.host_status(host_up("compute1", up=False)) == hosts.HOST_UNKNOWN
    service.forced_down = True
    assert hosts.host_status(service) == hosts.HOST_DOWN
    assert hosts.host_status(None) == ""


@pytest.mark.parametrize("body", [{"os-stop": None}, {"reboot": {"type": "HARD"}},
                                  {"os-getConsoleOutput": {"length": 5}}])
def test_what_needs_a_silent_host_is_409_naming_the_host_and_nothing_is_sent(
    member, api_as, sent, body
):
    server = make_server(member)
    host_up("compute1", up=False)
    response = _act(api_as(member), server, body)
    assert response.status_code == 409
    assert "compute1 is not responding" in response.json()["conflictingRequest"]["message"]
    server.refresh_from_db()
    assert server.task_state is None and sent == []


def test_deleting_a_server_of_a_silent_host_completes_at_once_and_still_asks_the_host(
    member, api_as, sent
):
    server = make_server(member)
    host_up("compute1", up=False)
    assert api_as(member).delete(f"{V}/servers/{server.uuid}").status_code == 204
    server.refresh_from_db()
    assert server.deleted and server.vm_state == states.DELETED
    # The destroy waits in the host's queue: whenever it returns, the domain goes.
    assert [(s.name, s.queue) for s in sent] == [(msg.TASK_DESTROY, "compute.compute1")]
    events = server.actions.get(action="delete").events.values_list("event", flat=True)
    assert "api_local_delete" in events


def test_a_second_delete_of_a_server_being_deleted_sends_the_destroy_again(member, api_as, sent):
    server = make_server(member)
    api = api_as(member)
    assert api.delete(f"{V}/servers/{server.uuid}").status_code == 204
    assert api.delete(f"{V}/servers/{server.uuid}").status_code == 204
    assert [s.name for s in sent] == [msg.TASK_DESTROY, msg.TASK_DESTROY]
    assert Instance.objects.get(pk=server.pk).task_state == states.DELETING
    assert server.actions.filter(action="delete").count() == 1


def test_a_server_shows_its_silent_host_as_unknown_to_its_owner_and_admins(member, admin, api_as):
    server = make_server(member)
    path = f"{V}/servers/{server.uuid}"
    owner = api_as(member).get(path, version="2.16").json()["server"]
    assert "host_status" not in owner  # a host that answers is none of a member's business
    assert api_as(admin).get(path, version="2.16").json()["server"]["host_status"] == "UP"
    host_up("compute1", up=False)
    for persona in (member, admin):
        shown = api_as(persona).get(path, version="2.16").json()["server"]
        assert shown["host_status"] == "UNKNOWN"
    assert "host_status" not in api_as(member).get(path, version="2.15").json()["server"]
    listed = api_as(member).get(f"{V}/servers/detail", version="2.16").json()["servers"]
    assert [s["host_status"] for s in listed] == ["UNKNOWN"]
