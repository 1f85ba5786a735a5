"""A real guest's screen in a real browser: headless Chromium (Debian's, driven by Playwright) opens the
console URL that remote-consoles hands out for a tiny qemu guest booted through the API of a live
stack (tests/stack.py, one agent on qemu:///system), the same-origin way a user would.

It waits for noVNC's connected state, keeps a screenshot in the artifacts directory
(KUMO_ARTIFACTS_DIR), checks that the canvas shows something (non-uniform pixels: the guest's boot
text), types a command on the guest's keyboard and reads its output on the serial console, and
finally deletes the guest and watches the page say so.

Skipped only where qemu:///system cannot be reached (tests/e2e/conftest.py) or Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.e2e.conftest import ARTIFACTS, BANNER, BOOT_TIMEOUT, CANVAS_COLOURS

pytestmark = pytest.mark.e2e
V = "/compute/v2.1"
@pytest.fixture(scope="module")
def stack(qemu_stack, tiny_image):
    return qemu_stack  # the session's (tests/e2e/conftest.py)


def console_output(api, server_id: str) -> str:
    response = api.post(f"{V}/servers/{server_id}/action", {"os-getConsoleOutput": {"length": 100}})
    assert response.status_code == 200, response.text
    return response.json()["output"]


def wait_for(what: str, check, timeout: float = BOOT_TIMEOUT, on_timeout=None):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            if on_timeout is not None:
                on_timeout()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_a_browser_shows_a_real_guests_screen_through_the_console_url(stack, tiny_image, browser):
    api = stack.client()
    image_id = api.upload_image("kumo-tiny", tiny_image.read_bytes())
    flavor = api.post(f"{V}/flavors", {"flavor": {
        "name": "console.tiny", "ram": 128, "vcpus": 1, "disk": 1, "id": "console-tiny"}})
    assert flavor.status_code == 200, flavor.text
    created = api.post(f"{V}/servers", {"server": {
        "name": "console-guest", "imageRef": image_id, "flavorRef": "console-tiny",
        "networks": "none"}})
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    try:
        assert api.wait_for(server_id, {"ACTIVE", "ERROR"}, timeout=BOOT_TIMEOUT)["status"] == "ACTIVE"
        wait_for("the guest's banner", lambda: BANNER in console_output(api, server_id))

        # The port reaches the database with the host's next heartbeat (every second here).
        def console_url() -> str | None:
            response = api.post(f"{V}/servers/{server_id}/remote-consoles",
                                {"remote_console": {"protocol": "vnc", "type": "novnc"}})
            assert response.status_code == 200, response.text
            url = response.json()["remote_console"]["url"]
            status = api.session.get(url.replace("/console/?", "/console/status?"), timeout=10)
            return url if status.json()["state"] == "ready" else None

        url = wait_for("a console the host reported a VNC port for", console_url, timeout=30)
        assert url.startswith(f"{stack.url}/console/?token=")

        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.goto(url)
        assert "console-guest" in page.text_content("header")
        page.wait_for_selector('body[data-state="connected"]', timeout=60_000)

        colours = wait_for("the guest's text on the canvas",
                           lambda: (n := page.evaluate(CANVAS_COLOURS)[0]) > 1 and n, timeout=60)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "console-browser.png"
        page.screenshot(path=str(shot))
        print(f"\n[console] {colours} colours on the canvas; screenshot {shot}")
        assert shot.stat().st_size > 0

        # Keyboard: a command typed on the guest's screen (tty1) writes to its serial console.
        # noVNC sends qemu scan codes, so shifted characters need a real Shift key press.
        page.click("#screen canvas")
        keyboard = page.keyboard
        keyboard.type("echo kumo-typed-42 ", delay=20)
        keyboard.press("Shift+Period")  # >
        keyboard.type("/dev/tty", delay=20)
        keyboard.press("Shift+KeyS")
        keyboard.type("0", delay=20)
        keyboard.press("Enter")
        typed_shot = str(ARTIFACTS / "console-browser-typed.png")
        wait_for("the typed command's output",
                 lambda: "kumo-typed-42" in console_output(api, server_id),
                 timeout=30, on_timeout=lambda: page.screenshot(path=typed_shot))
        page.screenshot(path=typed_shot)

        assert api.delete(f"{V}/servers/{server_id}").status_code == 204
        page.wait_for_selector('body[data-state="disconnected"]', timeout=60_000)
        message = page.text_content("#message")
        assert "no longer exists" in message or "was deleted" in message, message
        page.close()
    finally:
        if api.get(f"{V}/servers/{server_id}").status_code != 404:
            api.delete(f"{V}/servers/{server_id}")
        api.wait_gone(server_id, timeout=BOOT_TIMEOUT)
    if shutil.which("virsh"):
        assert server_id not in os.popen("virsh -c qemu:///system list --all --uuid").read()
