"""os-server-external-events: each event answered on its own, 200 or 207 overall."""

from __future__ import annotations

import pytest

from cloud.compute.models import InstanceAction
from tests.factories import make_server

V = "/compute/v2.1"
MISSING = "00000000-0000-4000-8000-000000000000"


def _send(api, *events, version=None):
    return api.post(f"{V}/os-server-external-events", {"events": list(events)}, version=version)


def test_accepted_events_answer_200_each_and_overall(admin, member, api_as):
    server = make_server(member)
    answer = _send(api_as(admin), {"name": "network-vif-plugged", "server_uuid": str(server.uuid),
                                   "tag": "port-1"})
    assert answer.status_code == 200, answer.content
    assert answer.json()["events"] == [{"name": "network-vif-plugged", "tag": "port-1",
                                        "server_uuid": str(server.uuid), "code": 200,
                                        "status": "completed"}]


def test_a_missing_server_a_server_without_host_and_a_missing_tag_fail_alone(admin, member,
                                                                          api_as):
    placed = make_server(member, "placed")
    unplaced = make_server(member, "unplaced", host=None)
    answer = _send(
        api_as(admin),
        {"name": "network-changed", "server_uuid": MISSING},
        {"name": "network-changed", "server_uuid": str(unplaced.uuid)},
        {"name": "volume-extended", "server_uuid": str(placed.uuid)},
        {"name": "network-changed", "server_uuid": str(placed.uuid)},
        version="2.51",
    )
    assert answer.status_code == 207
    assert [(e["code"], e["status"]) for e in answer.json()["events"]] == [
        (404, "failed"), (422, "failed"), (400, "failed"), (200, "completed")]


@pytest.mark.parametrize("name, version", [
    ("volume-extended", "2.51"), ("power-update", "2.76"),
    ("accelerator-request-bound", "2.82"), ("volume-reimaged", "2.93"),
])
def test_event_names_arrive_with_their_microversion(admin, member, api_as, mv2104, name, version):
    server = make_server(member)
    event = {"name": name, "server_uuid": str(server.uuid), "tag": "x"}
    major, minor = version.split(".")
    assert _send(api_as(admin), event, version=f"{major}.{int(minor) - 1}").status_code == 400
    assert _send(api_as(admin), event, version=version).status_code == 200


def test_a_grown_volume_and_a_power_update_are_recorded_as_nova_records_them(
    admin, member, api_as, mv2104
):
    server = make_server(member)
    _send(api_as(admin), {"name": "volume-extended", "server_uuid": str(server.uuid),
                          "tag": "vol-1"},
          {"name": "power-update", "server_uuid": str(server.uuid), "tag": "POWER_OFF"},
          version="2.76")
    assert sorted(InstanceAction.objects.filter(instance=server).values_list(
        "action", flat=True)) == ["extend_volume", "stop"]


def test_only_admins_send_events(member, api_as):
    server = make_server(member)
    assert _send(api_as(member), {"name": "network-changed",
                                  "server_uuid": str(server.uuid)}).status_code == 403
