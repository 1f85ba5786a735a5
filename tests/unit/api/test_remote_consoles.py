"""POST /servers/{id}/remote-consoles (2.6+) and the legacy os-getVNCConsole action (2.1–2.5), as
the OpenStack clients send them."""

from __future__ import annotations

import pytest

from cloud.compute.models import ConsoleToken
from tests.factories import make_server
from tests.unit.consoles.fakes import console_host

V = "/compute/v2.1"
BODY = {"remote_console": {"protocol": "vnc", "type": "novnc"}}


@pytest.fixture
def server(member):
    console_host("compute1")
    return make_server(member, console_port=5900)


def test_a_member_gets_a_novnc_url_on_the_same_origin(member, api_as, server):
    response = api_as(member, "2.60").post(f"{V}/servers/{server.uuid}/remote-consoles", BODY)
    assert response.status_code == 200, response.content
    console = response.json()["remote_console"]
    assert set(console) == {"protocol", "type", "url"}
    assert (console["protocol"], console["type"]) == ("vnc", "novnc")
    assert console["url"].startswith("http://testserver/console/?token=")
    assert ConsoleToken.objects.filter(instance=server).count() == 1


def test_the_console_base_url_setting_wins_over_the_request_origin(member, api_as, server, settings):
    settings.KUMO_CONSOLE_BASE_URL = "http://proxy.example:6080"
    response = api_as(member, "2.6").post(f"{V}/servers/{server.uuid}/remote-consoles", BODY)
    assert response.json()["remote_console"]["url"].startswith("http://proxy.example:6080/console/?token=")


def test_the_legacy_vnc_console_action_answers_at_2_1(member, api_as, server):
    response = api_as(member).post(f"{V}/servers/{server.uuid}/action",
                                   {"os-getVNCConsole": {"type": "novnc"}})
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"console"}
    console = response.json()["console"]
    assert set(console) == {"type", "url"}
    assert console["type"] == "novnc"
    assert console["url"].startswith("http://testserver/console/?token=")


def test_the_legacy_action_is_gone_from_2_6_as_in_nova(member, api_as, server):
    response = api_as(member, "2.6").post(f"{V}/servers/{server.uuid}/action",
                                          {"os-getVNCConsole": {"type": "novnc"}})
    assert response.status_code == 404


def test_remote_consoles_does_not_exist_before_2_6(member, api_as, server):
    response = api_as(member, "2.5").post(f"{V}/servers/{server.uuid}/remote-consoles", BODY)
    assert response.status_code == 404
    assert "itemNotFound" in response.json()


@pytest.mark.parametrize("body", [
    {"remote_console": {"protocol": "vnc"}},
    {"remote_console": {"protocol": "vnc", "type": "novnc", "extra": 1}},
    {"remote_console": {"protocol": "telnet", "type": "novnc"}},
    {"console": {"protocol": "vnc", "type": "novnc"}},
])
def test_malformed_bodies_are_400(member, api_as, server, body):
    response = api_as(member, "2.60").post(f"{V}/servers/{server.uuid}/remote-consoles", body)
    assert response.status_code == 400
    assert "badRequest" in response.json()


def test_console_types_this_cloud_does_not_serve_are_400(member, api_as, server):
    body = {"remote_console": {"protocol": "spice", "type": "spice-html5"}}
    response = api_as(member, "2.60").post(f"{V}/servers/{server.uuid}/remote-consoles", body)
    assert response.status_code == 400
    assert not ConsoleToken.objects.exists()


def test_a_server_that_is_not_running_is_409(member, api_as):
    building = make_server(member, vm_state="building", task_state="scheduling", host=None)
    response = api_as(member, "2.60").post(f"{V}/servers/{building.uuid}/remote-consoles", BODY)
    assert response.status_code == 409
    assert "conflictingRequest" in response.json()


def test_a_reader_may_not_open_a_console(reader, api_as, server):
    response = api_as(reader, "2.60").post(f"{V}/servers/{server.uuid}/remote-consoles", BODY)
    assert response.status_code == 403
    assert not ConsoleToken.objects.exists()


def test_another_projects_server_is_not_found(other, api_as, server):
    response = api_as(other, "2.60").post(f"{V}/servers/{server.uuid}/remote-consoles", BODY)
    assert response.status_code == 404
    legacy = api_as(other).post(f"{V}/servers/{server.uuid}/action",
                                {"os-getVNCConsole": {"type": "novnc"}})
    assert legacy.status_code == 404
    assert not ConsoleToken.objects.exists()
