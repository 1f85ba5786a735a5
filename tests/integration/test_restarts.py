"""Restarts are harmless (issue 15): restarting a control-plane process or a compute agent changes
nothing for the guests, as real processes on PostgreSQL and Redis. libvirt's test driver forgets
its domains when its agent restarts, as a host that lost them would: the servers stay ACTIVE, their
domains come back (cloud/conductor/guest_recovery.py), and no ERROR or 'gone' is left behind."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import node_rows, wait_until
from tests.stack import AgentSpec, Stack, qcow2_bytes

V = "/compute/v2.1"
HOST = "compute-a"


@pytest.fixture(scope="module")
def stack():
    live = Stack("restarts", agents=[AgentSpec(HOST)], schedulers=1)
    with live.running():
        yield live


@pytest.fixture(scope="module")
def api(stack):
    return stack.client()


@pytest.fixture(scope="module")
def servers(api):
    image = api.upload_image("it-image", qcow2_bytes())
    ids = []
    for name in ("ha-1", "ha-2"):
        body = {"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}}
        response = api.post(f"{V}/servers", body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["server"]["id"])
    for server_id in ids:
        assert api.wait_for(server_id, {"ACTIVE", "ERROR"})["status"] == "ACTIVE"
    yield ids
    for server_id in ids:
        api.delete(f"{V}/servers/{server_id}")
    for server_id in ids:
        api.wait_gone(server_id)


def actions(api, server_id: str) -> list[dict]:
    return api.get(f"{V}/servers/{server_id}/os-instance-actions").json()["instanceActions"]


def settled_active(api, server_id: str) -> dict:
    server = api.get(f"{V}/servers/{server_id}").json()["server"]
    assert server["status"] != "ERROR", server.get("fault")
    return server


def test_a_restarted_agent_gets_its_guests_back_and_they_stay_active(stack, api, servers):
    wait_until(lambda: set(servers) <= node_rows(stack)[HOST]["domains"],
               what="the agent to report both domains")
    before = {s: len(actions(api, s)) for s in servers}

    stack.restart(HOST)

    # The test driver forgot both domains; the conductor has them made again.
    wait_until(lambda: set(servers) <= node_rows(stack)[HOST]["domains"] and all(
        (s := settled_active(api, i))["status"] == "ACTIVE" and s["OS-EXT-STS:task_state"] is None
        and actions(api, i)[0]["action"] == "reboot" for i in servers),
        timeout=90, what="both servers ACTIVE again with their domains back")
    time.sleep(3)  # a few more reports: nothing turns them into ERROR
    for server_id in servers:
        server = settled_active(api, server_id)
        assert (server["status"], server["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
        assert "fault" not in server
        assert server["OS-EXT-SRV-ATTR:host"] == HOST
        recovery = actions(api, server_id)
        assert len(recovery) == before[server_id] + 1, recovery
        assert recovery[0]["request_id"].startswith("req-recover-gone-")
        events = api.get(f"{V}/servers/{server_id}/os-instance-actions/"
                         f"{recovery[0]['request_id']}").json()["instanceAction"]["events"]
        assert {e["event"] for e in events} == {"conductor_guest_recovery", "compute_rebooted"}
    assert set(servers) <= node_rows(stack)[HOST]["domains"]


def test_restarting_the_control_plane_changes_nothing_for_the_guests(stack, api, servers):
    wait_until(lambda: all(settled_active(api, s)["OS-EXT-STS:task_state"] is None
                           for s in servers), what="both servers settled")
    before = {s: len(actions(api, s)) for s in servers}

    for name in ("conductor", "scheduler0", "web"):  # beat runs in the conductor
        stack.restart(name)
    stack._wait_for_web()
    time.sleep(6)  # several heartbeats through the new conductor

    for server_id in servers:
        server = settled_active(api, server_id)
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
        assert len(actions(api, server_id)) == before[server_id]
    assert set(servers) <= node_rows(stack)[HOST]["domains"]
