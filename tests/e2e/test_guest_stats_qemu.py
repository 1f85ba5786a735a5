"""A real guest's statistics under qemu: after it boots, os-server-diagnostics shows its per-vCPU
times, the disk it read and the memory its qemu holds; /metrics shows its disk bytes; and its
instance page in headless Chromium draws charts that gain points as its host reports.

The figures this prints (bytes read while booting, points drawn) are for reading, not bounds."""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.conftest import ARTIFACTS, sign_in_as
from tests.e2e.test_qemu_api import wait_console
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.e2e
V = "/compute/v2.1"


@pytest.fixture(scope="module")
def stack(qemu_stack, tiny_image):
    return qemu_stack  # the session's (tests/e2e/conftest.py)


@pytest.fixture(scope="module")
def guest(stack, tiny_image):
    api = stack.client()
    image_id = api.upload_image("kumo-tiny", tiny_image.read_bytes())
    flavor = api.post(f"{V}/flavors", {"flavor": {"name": "e2e.stats", "ram": 128, "vcpus": 1,
                                                  "disk": 1, "id": "e2e-stats"}})
    assert flavor.status_code == 200, flavor.text
    created = api.post(f"{V}/servers", {"server": {
        "name": "stats-guest", "imageRef": image_id, "flavorRef": "e2e-stats",
        "networks": "none"}})
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    server = api.wait_for(server_id, {"ACTIVE", "ERROR"}, timeout=120)
    assert server["status"] == "ACTIVE", server.get("fault")
    wait_console(api, server_id, "KUMO TINY GUEST")
    yield api, server
    api.delete(f"{V}/servers/{server_id}")
    api.wait_gone(server_id, timeout=120)


def test_diagnostics_of_a_real_guest(guest):
    api, server = guest
    url = f"{V}/servers/{server['id']}/diagnostics"
    body = wait_until(lambda: (r := api.get(url, headers={
        "OpenStack-API-Version": "compute 2.48"})).status_code == 200 and r.json(),
        what="the guest's statistics")
    assert (body["state"], body["hypervisor"], body["num_cpus"]) == ("running", "qemu", 1)
    assert [c["id"] for c in body["cpu_details"]] == [0] and body["cpu_details"][0]["time"] > 0
    assert body["memory_details"]["maximum"] == 128 and 0 < body["memory_details"]["used"] <= 128
    read = sum(d["read_bytes"] for d in body["disk_details"])
    assert body["num_disks"] >= 1 and read > 0  # it booted from its disk
    print(f"\nthe guest read {read} bytes from its disks while booting; diagnostics: {body}")
    legacy = api.get(url, headers={"OpenStack-API-Version": "compute 2.1"}).json()
    assert legacy["cpu0_time"] > 0 and legacy["vda_read"] > 0 and legacy["memory-rss"] > 0


def test_metrics_show_the_real_guest_s_disk_bytes(stack, guest):
    _, server = guest

    def read_bytes() -> float | None:
        text = requests.get(f"{stack.url}/metrics", timeout=30).text
        for labels, value in re.findall(
                r"^kumo_guest_disk_read_bytes_total\{(.*)\} (\S+)$", text, re.MULTILINE):
            if f'instance="{server["id"]}"' in labels:
                return float(value)
        return None

    assert wait_until(read_bytes, what="the guest in /metrics") > 0


def test_the_instance_page_draws_live_charts(stack, guest, browser):
    _, server = guest
    page = sign_in_as(browser, stack.url, "admin", stack.admin_password)
    try:
        page.goto(f"{stack.url}/instances/{server['id']}/")
        charts = page.locator("[data-guest-stats]")
        page.wait_for_function(
            "() => Number(document.querySelector('[data-guest-stats]').dataset.points || 0) >= 2",
            timeout=30_000)
        first = int(charts.get_attribute("data-points") or 0)
        page.wait_for_function(
            f"() => Number(document.querySelector('[data-guest-stats]').dataset.points) > {first}",
            timeout=30_000)  # pushed, not reloaded
        assert page.locator("[data-guest-stats-note]").is_hidden()
        out = ARTIFACTS / "guest-stats"
        out.mkdir(parents=True, exist_ok=True)
        charts.screenshot(path=str(out / "instance-charts.png"))
        print(f"\ncharts drew {charts.get_attribute('data-points')} points; screenshot in {out}")
    finally:
        page.context.close()
