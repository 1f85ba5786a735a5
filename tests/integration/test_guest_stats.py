"""Guests' statistics end to end: a real agent on libvirt's test driver sends its guests' counters
through the broker, the conductor keeps them, and os-server-diagnostics and /metrics answer with
values that move; a stopped server is a 409."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.integration.helpers import wait_until
from tests.stack import qcow2_bytes

V = "/compute/v2.1"


@pytest.fixture(scope="module")
def api(stack):
    return stack.client()


@pytest.fixture(scope="module")
def server(api):
    image_id = api.upload_image("stats-image", qcow2_bytes())
    made = api.post(f"{V}/servers", {"server": {
        "name": "stats-vm", "imageRef": image_id, "flavorRef": "1", "networks": "none"}})
    assert made.status_code == 202, made.text
    server_id = made.json()["server"]["id"]
    server = api.wait_for(server_id, {"ACTIVE", "ERROR"})
    assert server["status"] == "ACTIVE", server.get("fault")
    yield server
    api.delete(f"{V}/servers/{server_id}")
    api.wait_gone(server_id)
    api.delete(f"/image/v2/images/{image_id}")


def diagnostics(api, server_id: str, version: str = "2.48") -> requests.Response:
    return api.get(f"{V}/servers/{server_id}/diagnostics",
                   headers={"OpenStack-API-Version": f"compute {version}"})


def test_diagnostics_answer_from_the_agent_s_statistics_and_move(api, server):
    server_id = server["id"]
    first = wait_until(lambda: (r := diagnostics(api, server_id)).status_code == 200 and r.json(),
                       timeout=30, what="the first statistics of the guest")
    assert (first["state"], first["driver"], first["hypervisor"]) == ("running", "libvirt",
                                                                       "test")
    assert first["num_cpus"] == 1 and first["memory_details"]["maximum"] == 128
    # The test driver counts the vCPUs together only: one entry with a null id.
    (cpu,) = first["cpu_details"]
    assert cpu["id"] is None and cpu["time"] > 0

    def moved() -> dict | None:
        now = diagnostics(api, server_id).json()
        return now if now["cpu_details"][0]["time"] > cpu["time"] else None

    later = wait_until(moved, timeout=15, what="the guest's CPU time to grow")
    assert 0 <= later["cpu_details"][0]["utilisation"] <= 100
    assert later["uptime"] >= 0

    legacy = diagnostics(api, server_id, "2.47").json()
    assert legacy["memory"] == 128 * 1024 and legacy["cpu_time"] >= later["cpu_details"][0]["time"]


def test_metrics_show_the_guest_by_instance_and_host(stack, server):
    wanted = {"instance": server["id"], "host": server["OS-EXT-SRV-ATTR:host"]}

    def cpu_seconds() -> float | None:
        text = requests.get(f"{stack.url}/metrics", timeout=30).text
        for labels, value in re.findall(r"^kumo_guest_cpu_seconds_total\{(.*)\} (\S+)$", text,
                                        re.MULTILINE):
            if dict(re.findall(r'(\w+)="([^"]*)"', labels)) == wanted:
                return float(value)
        return None

    first = wait_until(cpu_seconds, what="the guest in /metrics")
    wait_until(lambda: (now := cpu_seconds()) is not None and now > first,
               timeout=15, what="the guest's CPU seconds to grow in /metrics")


def test_a_stopped_server_has_no_diagnostics(api, server):
    server_id = server["id"]
    assert api.post(f"{V}/servers/{server_id}/action", {"os-stop": None}).status_code == 202
    api.wait_for(server_id, {"SHUTOFF"})
    answer = diagnostics(api, server_id)
    assert answer.status_code == 409, answer.text
    assert "vm_state stopped" in answer.json()["conflictingRequest"]["message"]
    assert api.post(f"{V}/servers/{server_id}/action", {"os-start": None}).status_code == 202
    api.wait_for(server_id, {"ACTIVE"})
    # Running again: statistics come back within a few report periods.
    time.sleep(0.1)
    wait_until(lambda: diagnostics(api, server_id).status_code == 200, timeout=30,
               what="diagnostics after the start")
