"""The admin System page's data on a live stack (gunicorn with two web workers, two schedulers, a
conductor, an agent on libvirt's test driver): a boot that becomes active and one refused by
RamFilter, counted in the scheduler and conductor processes, reach the page through Redis; its
samples, kept in the shared cache, give rates to whichever worker answers; a demo member is
refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from cloud.bootstrap.seed import read_saved_passwords
from tests.stack import AgentSpec, Stack, qcow2_bytes

pytestmark = pytest.mark.integration

V = "/compute/v2.1"
DATA = "/manage/system/data"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    live = Stack("system-page", agents=[AgentSpec("compute-a", cpus=2, memory_mb=2048)],
                 schedulers=1)
    with live.running():
        yield live


def signed_in(stack: Stack, user: str, password: str) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{stack.url}/login/", timeout=10).raise_for_status()
    answer = browser.post(f"{stack.url}/login/", timeout=10, allow_redirects=False, data={
        "username": user, "password": password,
        "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert answer.status_code == 302, answer.text[:500]
    return browser


def boot(api, image_id: str, flavor: str) -> str:
    body = {"server": {"name": f"system-{flavor}", "imageRef": image_id, "flavorRef": flavor,
                       "networks": "none"}}
    response = api.post(f"{V}/servers", body)
    assert response.status_code == 202, response.text
    return response.json()["server"]["id"]


def test_boots_and_a_failure_reach_the_system_page(stack):
    admin = signed_in(stack, "admin", stack.admin_password)
    first = admin.get(f"{stack.url}{DATA}", timeout=10)
    assert first.status_code == 200, first.text[:500]
    assert first.json()["now"] is None or first.json()["now"]["boots_per_minute"]["active"] == 0

    api = stack.client()
    image_id = api.upload_image("system-image", qcow2_bytes())
    huge = api.post(f"{V}/flavors", {"flavor": {"name": "system-huge", "ram": 65536,
                                                "vcpus": 1, "disk": 1}})
    assert huge.status_code == 200, huge.text
    assert api.wait_for(boot(api, image_id, "1"), {"ACTIVE", "ERROR"})["status"] == "ACTIVE"
    assert api.wait_for(boot(api, image_id, huge.json()["flavor"]["id"]),
                        {"ACTIVE", "ERROR"})["status"] == "ERROR"

    # The page asks every step; ask as it does until both boots show (the processes send their
    # counts within a second; a rate needs the sample before them and one after).
    deadline, data = time.monotonic() + 45, {}
    while time.monotonic() < deadline:
        data = admin.get(f"{stack.url}{DATA}", timeout=10).json()
        now = data["now"]
        if now and now["boots_per_minute"]["active"] > 0 and now["boots_per_minute"]["failed"] > 0:
            break
        time.sleep(data["step_seconds"])
    assert data["now"]["boots_per_minute"]["active"] > 0, data
    assert data["now"]["boots_per_minute"]["failed"] > 0, data
    assert data["now"]["boots_per_minute"]["placed"] > 0, data
    assert data["no_valid_host"]["total"] == {"RamFilter": 1}
    assert "compute" in {family for p in data["points"] for family in p["api"]}
    assert data["queues"]["scheduler"] == 0
    [host] = data["hosts"]
    assert host["host"] == "compute-a" and host["status"] == "up"
    assert host["vcpus"]["total"] == 2 and host["vcpus"]["used"] == 1
    assert data["total"]["memory_mb"]["used"] == host["memory_mb"]["used"] > 0

    [demo_password] = read_saved_passwords(stack.workdir)["demo"][:1]
    demo = signed_in(stack, "demo", demo_password)
    assert demo.get(f"{stack.url}{DATA}", timeout=10).status_code == 403
    assert demo.get(f"{stack.url}/manage/system/", timeout=10).status_code == 403
