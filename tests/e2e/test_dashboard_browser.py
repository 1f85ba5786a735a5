"""The dashboard in a real browser: headless Chromium (Debian's, driven by Playwright) against a
live stack (tests/stack.py) on libvirt's test driver, signed in as people of three roles.

A member signs in, launches an instance from the dialog and watches its row turn ACTIVE over the
websocket without the page reloading, stops and starts it, opens its tabs (console included), and
uploads an image while the progress bar moves. A reader of the same project sees the instance but
no button, and a forged action is refused by the server. A member of another project sees none of
it. Screenshots of the main pages go to KUMO_ARTIFACTS_DIR (default artifacts/), phone-sized too.

The stack's own web process serves the consoles' websockets only until the dashboard's routes are
wired into cloud/asgi.py; this test therefore runs one more web process of its own (uvicorn with
asgi_app() below: the same HTTP application, both websocket route sets) on the stack's database
and Redis (a Redis database the stack claims for itself, or KUMO_IT_REDIS_DB), and points the
browser at it.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.stack import PYTHON, ROOT, AgentSpec, Stack, free_port, qcow2_bytes

pytestmark = pytest.mark.e2e
V = "/compute/v2.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "dashboard"
PASSWORD = "dashboard-e2e-password"
LIVE_TIMEOUT = 30_000  # ms: a boot on the test driver takes about a second


def asgi_app():
    """`uvicorn --factory tests.e2e.test_dashboard_browser:asgi_app`: the web process's HTTP
    application with the console and the dashboard websockets side by side."""
    from channels.routing import ProtocolTypeRouter, URLRouter

    from cloud import asgi
    from cloud.dashboard.routing import websocket_urlpatterns as dashboard_routes
    from consoles.routing import websocket_urlpatterns as console_routes

    return ProtocolTypeRouter({
        "http": asgi.http_application,
        "websocket": URLRouter(dashboard_routes + console_routes),
    })


# --- the stack, its people, and the browser


@pytest.fixture(scope="module")
def stack():
    live = Stack("dashboard", agents=[AgentSpec("dash-1", cpus=8, memory_mb=8192)], schedulers=1)
    with live.running():
        yield live


@pytest.fixture(scope="module")
def web(stack):
    """The browser's origin: a web process serving the dashboard's websocket too."""
    port = free_port()
    log = open(stack.workdir / "dashboard-web.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "--factory", "tests.e2e.test_dashboard_browser:asgi_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--lifespan", "off"],
        cwd=ROOT, env=stack.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the dashboard web process exited; see {log.name}"
            try:
                if requests.get(f"{url}/login/", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the dashboard web process did not come up"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def people(stack):
    """Project "web" with a member and a reader, project "elsewhere" with its own member, and a
    public image everyone can boot."""
    api = stack.client()
    roles = {r["name"]: r["id"] for r in api.get("/identity/v3/roles").json()["roles"]}
    projects = {}
    for name in ("web", "elsewhere"):
        created = api.post("/identity/v3/projects", {"project": {"name": name}})
        assert created.status_code == 201, created.text
        projects[name] = created.json()["project"]["id"]
    cast = {"wendy": ("web", "member"), "rita": ("web", "reader"), "otto": ("elsewhere", "member")}
    for user, (project, role) in cast.items():
        created = api.post("/identity/v3/users", {"user": {
            "name": user, "password": PASSWORD, "default_project_id": projects[project]}})
        assert created.status_code == 201, created.text
        user_id = created.json()["user"]["id"]
        granted = api.put(f"/identity/v3/projects/{projects[project]}/users/{user_id}/roles/"
                          f"{roles[role]}")
        assert granted.status_code == 204, granted.text
    image = api.post("/image/v2/images", {"name": "cirros-e2e", "disk_format": "qcow2",
                                          "container_format": "bare", "visibility": "public"})
    assert image.status_code == 201, image.text
    upload = api.request("PUT", f"/image/v2/images/{image.json()['id']}/file",
                         data=qcow2_bytes(), headers={"Content-Type": "application/octet-stream"})
    assert upload.status_code == 204, upload.text
    return {"projects": projects, "image": image.json()["id"]}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (scripts/setup.sh --test installs Debian's chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


def sign_in(browser, web: str, user: str, password: str = PASSWORD, **context_args):
    # A new context is a fresh profile: its own cookies, storage and cache.
    context_args.setdefault("viewport", {"width": 1280, "height": 860})
    context = browser.new_context(**context_args)
    page = context.new_page()
    page.goto(f"{web}/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{web}/")
    return page


def shot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def row(page, name: str):
    return page.locator("tr[data-instance]", has=page.locator(f"a:text-is('{name}')"))


def wait_status(page, name: str, status: str) -> None:
    row(page, name).locator(f'[data-status="{status}"]').first.wait_for(timeout=LIVE_TIMEOUT)


def wait_live(page) -> None:
    page.wait_for_selector('body[data-live="on"]', timeout=10_000)


# --- the scenario: each test stands alone (`pytest path::test` passes for any of them)


@pytest.fixture(scope="module")
def wendy_api(stack, people):
    return stack.client(user="wendy", password=PASSWORD, project="web")


def wait_server(api, server_id: str, status: str) -> dict:
    deadline = time.monotonic() + LIVE_TIMEOUT / 1000
    while True:
        server = api.get(f"{V}/servers/{server_id}").json()["server"]
        if server["status"] == status and server["OS-EXT-STS:task_state"] is None:
            return server
        assert server["status"] != "ERROR", server
        assert time.monotonic() < deadline, f"{server_id} is {server['status']}, not {status}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def web_1(wendy_api, people):
    """Instance web-1 of project "web", ACTIVE, booted through the API: its id."""
    created = wendy_api.post(f"{V}/servers", {"server": {
        "name": "web-1", "imageRef": people["image"], "flavorRef": "1", "networks": "none"}})
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    wait_server(wendy_api, server_id, "ACTIVE")
    return server_id


@pytest.fixture(scope="module")
def member_page(browser, web, people):
    page = sign_in(browser, web, "wendy")
    yield page
    page.context.close()


def test_signing_in_shows_the_overview_with_quota_charts(member_page, web, wendy_api):
    page = member_page
    page.goto(f"{web}/")
    assert page.locator("h1").inner_text() == "Overview of web"
    # Chart.js drew the usage chart (its canvas has a size), and the numbers are in the table.
    page.wait_for_function("() => window.Chart && Chart.getChart('usage-chart')")
    in_use = len(wendy_api.get(f"{V}/servers").json()["servers"])
    assert page.locator('tr[data-usage="instances"] td.num').first.inner_text() == str(in_use)
    assert page.locator('tr[data-usage="cores"]').count() == 1
    shot(page, "overview")


def test_launching_an_instance_turns_active_without_a_reload(member_page, web):
    page = member_page
    page.goto(f"{web}/instances/")
    wait_live(page)
    page.evaluate("() => { window.__sameDocument = true; }")
    page.click("#launch-button")
    page.wait_for_selector("dialog#dialog[open] #launch-form")
    page.fill("#id_name", "launched-1")
    page.select_option("#id_image", label="cirros-e2e")
    page.select_option("#id_flavor", value="1")
    # The quota panel is checked by the server as the form changes.
    page.wait_for_selector('#launch-check tr[data-quota="cores"] td:has-text("+1")')
    shot(page, "launch-dialog", full_page=False)
    page.click("#launch-form button[type=submit]")
    page.wait_for_selector("dialog#dialog[open]", state="detached")
    # The new row arrives over the websocket, then turns ACTIVE there.
    row(page, "launched-1").wait_for(timeout=LIVE_TIMEOUT)
    wait_status(page, "launched-1", "ACTIVE")
    assert page.evaluate("() => window.__sameDocument") is True  # never reloaded
    assert page.evaluate("() => window.kumoLive.messages") >= 1
    shot(page, "instances")


def _act(page, name: str, action: str) -> None:
    target = row(page, name)
    target.locator("details.menu > summary").click()
    target.locator(f'a[data-action="{action}"]').click()
    page.wait_for_selector(f'dialog#dialog[open] form[data-confirm="{action}"]')
    page.click(f'form[data-confirm="{action}"] button[type=submit]')
    page.wait_for_load_state("load")


def test_stopping_and_starting_it_from_the_table(member_page, web, web_1):
    page = member_page
    page.goto(f"{web}/instances/")
    wait_live(page)
    _act(page, "web-1", "stop")
    wait_live(page)
    wait_status(page, "web-1", "SHUTOFF")
    assert row(page, "web-1").locator('a[data-action="stop"]').count() == 0
    _act(page, "web-1", "start")
    wait_live(page)
    wait_status(page, "web-1", "ACTIVE")


def test_the_instance_tabs_show_overview_log_actions_and_console(member_page, web, web_1,
                                                                 wendy_api):
    page = member_page
    for action, status in (("os-stop", "SHUTOFF"), ("os-start", "ACTIVE")):
        assert wendy_api.post(f"{V}/servers/{web_1}/action", {action: None}).status_code == 202
        wait_server(wendy_api, web_1, status)
    page.goto(f"{web}/instances/")
    row(page, "web-1").locator("a:text-is('web-1')").click()
    page.wait_for_selector("#instance-summary")
    assert "ACTIVE" in page.locator("#instance-summary .badge").first.inner_text()
    shot(page, "instance-overview")
    page.click("nav.tabs >> text=Action log")
    for action in ("create", "stop", "start"):
        page.wait_for_selector(f"td:text-is('{action}')")
    shot(page, "instance-actions")
    page.click("nav.tabs >> text=Log")
    page.wait_for_selector("pre.console, .alert.info", timeout=30_000)
    page.click("nav.tabs >> text=Console")
    # The test driver's guests have no screen: the tab says so in words, or frames the console.
    page.wait_for_selector("iframe.console, [data-console-unavailable]")
    shot(page, "instance-console")


def test_uploading_an_image_shows_its_progress(member_page, web, tmp_path):
    page = member_page
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(1024) * 24 * 1024)  # 24 MiB: many progress events
    page.goto(f"{web}/images/")
    # Loopback is too fast to see a bar move: upload at 8 MiB/s, as over a real link.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": 8 * 1024 * 1024,
    })
    page.fill("#id_name", "uploaded-e2e")
    page.select_option("#id_disk_format", "raw")
    page.set_input_files("#id_file", str(disk))
    page.click("#upload-form button[type=submit]")
    page.wait_for_function("() => (window.kumoUploadProgress || []).some((p) => p >= 30 && p < 100)",
                           timeout=60_000)
    shot(page, "image-upload-progress")
    page.wait_for_selector("#upload-status:has-text('Uploaded')", timeout=60_000)
    progress = page.evaluate("() => window.kumoUploadProgress")
    assert progress and progress[-1] == 100 and min(progress) < 100, progress
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
    })
    page.wait_for_url(f"{web}/images/*/")
    assert "active" in page.locator("h1 .badge").inner_text()
    shot(page, "image-uploaded")


def test_a_reader_sees_no_buttons_and_a_forged_action_is_refused(browser, web, stack, web_1):
    page = sign_in(browser, web, "rita")
    try:
        page.goto(f"{web}/instances/")
        row(page, "web-1").wait_for()
        assert page.locator("details.menu, #launch-button, a[data-action]").count() == 0
        instance_id = row(page, "web-1").get_attribute("data-instance")
        page.goto(f"{web}/instances/{instance_id}/")
        assert page.locator("a[data-action]").count() == 0
        page.goto(f"{web}/images/")
        assert page.locator("#upload-form").count() == 0
        shot(page, "reader-instances")
        # The same POST a member's button sends, with a valid session and CSRF token.
        csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        refused = page.request.post(f"{web}/instances/{instance_id}/do/stop",
                                    headers={"X-CSRFToken": csrf, "Referer": f"{web}/"})
        assert refused.status == 403
        server = stack.client().get(f"{V}/servers/{instance_id}").json()["server"]
        assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None
    finally:
        page.context.close()


def test_a_member_of_another_project_sees_none_of_it(browser, web, stack, web_1):
    page = sign_in(browser, web, "otto")
    try:
        page.goto(f"{web}/instances/")
        wait_live(page)
        assert row(page, "web-1").count() == 0
        assert "uploaded-e2e" not in page.goto(f"{web}/images/").text()
        api = stack.client()
        instance_id = web_1
        assert page.goto(f"{web}/instances/{instance_id}/").status == 404
        csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        forged = page.request.post(f"{web}/instances/{instance_id}/do/delete",
                                   headers={"X-CSRFToken": csrf, "Referer": f"{web}/"})
        assert forged.status == 404
        assert api.get(f"{V}/servers/{instance_id}").json()["server"]["status"] == "ACTIVE"
    finally:
        page.context.close()


def test_an_admin_sees_the_operator_pages(browser, web, stack, web_1):
    page = sign_in(browser, web, "admin", stack.admin_password)
    try:
        page.goto(f"{web}/manage/hypervisors/")
        page.wait_for_selector('tr[data-host="dash-1"]')
        shot(page, "admin-hypervisors")
        page.goto(f"{web}/manage/services/")
        assert page.locator("td:text-is('nova-compute')").count() == 1
        shot(page, "admin-services")
        page.goto(f"{web}/manage/instances/")
        assert row(page, "web-1").count() == 1
        shot(page, "admin-all-instances")
    finally:
        page.context.close()


def test_the_pages_fit_a_phone(browser, web, people):
    page = sign_in(browser, web, "wendy", viewport={"width": 390, "height": 844},
                   is_mobile=True, has_touch=True)
    try:
        for path, name in (("/", "phone-overview"), ("/instances/", "phone-instances")):
            page.goto(f"{web}{path}")
            # Nothing but the tables' own scrolling boxes may be wider than the screen.
            overflow = page.evaluate("() => document.documentElement.scrollWidth")
            assert overflow <= 390 + 1, (path, overflow)
            shot(page, name)
    finally:
        page.context.close()

