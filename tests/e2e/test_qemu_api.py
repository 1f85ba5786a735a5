"""A real tiny guest under qemu, booted and driven only through Kumo's HTTP API: the whole stack as
real processes (tests/stack.py) with one compute agent on qemu:///system.

ACTIVE; the console output shows the guest's banner and the hostname it read from its config drive;
stop → SHUTOFF → start → ACTIVE; reboot; a snapshot becomes an active image that boots a second
server; deleting both leaves no domain, no disk and no claim. Seconds from the create call to the
banner are printed (a figure, not a pass/fail bound).
"""

from __future__ import annotations

import subprocess
import time

import pytest

from cloud.compute.servers import hostname_for
from tests.e2e.conftest import BANNER, BOOT_TIMEOUT
from tests.integration.helpers import allocation_count, wait_until

pytestmark = pytest.mark.e2e
V = "/compute/v2.1"


@pytest.fixture(scope="module")
def stack(qemu_stack, tiny_image):
    return qemu_stack  # the session's (tests/e2e/conftest.py)


@pytest.fixture(scope="module")
def api(stack):
    return stack.client()


@pytest.fixture(scope="module")
def setup(api, tiny_image):
    image_id = api.upload_image("kumo-tiny", tiny_image.read_bytes())
    flavor = api.post(f"{V}/flavors", {"flavor": {"name": "e2e.tiny", "ram": 128, "vcpus": 1,
                                                  "disk": 1, "id": "e2e-tiny"}})
    assert flavor.status_code == 200, flavor.text
    return image_id


def console(api, server_id: str) -> str:
    response = api.post(f"{V}/servers/{server_id}/action", {"os-getConsoleOutput": {"length": 200}})
    assert response.status_code == 200, response.text
    return response.json()["output"]


def wait_console(api, server_id: str, *needles: str, unlike: str | None = None) -> str:
    """The console output once it shows every needle (and, with `unlike`, differs from that older
    output: a fresh boot, whether the log was appended to or started anew)."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    text = ""
    while time.monotonic() < deadline:
        text = console(api, server_id)
        if all(n in text for n in needles) and (unlike is None or text != unlike):
            return text
        time.sleep(0.5)
    raise AssertionError(f"console never showed {needles}; last output:\n{text[-1500:]}")


def act(api, server_id: str, body: dict) -> None:
    response = api.post(f"{V}/servers/{server_id}/action", body)
    assert response.status_code in (200, 202, 204), response.text


def domains() -> str:
    return subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--uuid"],
                          capture_output=True, text=True, check=True).stdout


def test_a_real_guest_lives_its_whole_life_through_the_api(stack, api, setup):
    image_id = setup
    name = "e2e-guest"
    started = time.monotonic()
    created = api.post(f"{V}/servers", {"server": {
        "name": name, "imageRef": image_id, "flavorRef": "e2e-tiny", "networks": "auto"}})
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    assert api.wait_for(server_id, {"ACTIVE", "ERROR"}, timeout=BOOT_TIMEOUT)["status"] == "ACTIVE"
    text = wait_console(api, server_id, BANNER, f"hostname={hostname_for(name)}", f"instance={server_id}")
    print(f"\nFIGURE create call to banner through the API: {time.monotonic() - started:.1f} s")
    assert server_id in domains()

    act(api, server_id, {"os-stop": None})
    assert api.wait_for(server_id, {"SHUTOFF"}, timeout=BOOT_TIMEOUT)["OS-EXT-STS:power_state"] == 4
    act(api, server_id, {"os-start": None})
    assert api.wait_for(server_id, {"ACTIVE"}, timeout=BOOT_TIMEOUT)["OS-EXT-STS:power_state"] == 1
    wait_console(api, server_id, BANNER, unlike=text)
    act(api, server_id, {"reboot": {"type": "HARD"}})
    assert api.wait_for(server_id, {"ACTIVE"}, timeout=BOOT_TIMEOUT)["status"] == "ACTIVE"

    snap = api.post(f"{V}/servers/{server_id}/action", {"createImage": {"name": "e2e-snap"}})
    assert snap.status_code == 202, snap.text
    snap_id = snap.json()["image_id"]
    wait_until(lambda: api.get(f"/image/v2/images/{snap_id}").json()["status"] == "active",
               timeout=BOOT_TIMEOUT, what="the snapshot to become active")
    api.wait_for(server_id, {"ACTIVE"})

    second = api.post(f"{V}/servers", {"server": {
        "name": "from-snap", "imageRef": snap_id, "flavorRef": "e2e-tiny", "networks": "none"}})
    second_id = second.json()["server"]["id"]
    assert api.wait_for(second_id, {"ACTIVE", "ERROR"}, timeout=BOOT_TIMEOUT)["status"] == "ACTIVE"
    wait_console(api, second_id, BANNER, f"instance={second_id}")

    # Killed behind Kumo's back: the power-state sync records it from the next host report.
    subprocess.run(["virsh", "-c", "qemu:///system", "destroy", second_id], check=True,
                   capture_output=True)
    assert api.wait_for(second_id, {"SHUTOFF"}, timeout=60)["OS-EXT-STS:power_state"] in (4, 6)

    instances = stack.workdir / "instances" / "qemu-1"
    for sid in (server_id, second_id):
        assert (instances / sid).exists()
        assert api.delete(f"{V}/servers/{sid}").status_code == 204
    for sid in (server_id, second_id):
        api.wait_gone(sid, timeout=BOOT_TIMEOUT)
        assert sid not in domains()
        assert not (instances / sid).exists()
    assert allocation_count(stack) == 0
    node = api.get(f"{V}/os-hypervisors/detail").json()["hypervisors"][0]
    assert node["memory_mb_used"] == 0
