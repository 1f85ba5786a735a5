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

import pytest
import requests

from tests.e2e.conftest import ARTIFACTS as E2E_ARTIFACTS
from tests.e2e.conftest import sign_in_as
from tests.stack import PYTHON, ROOT, AgentSpec, Stack, free_port, qcow2_bytes

pytestmark = pytest.mark.e2e
V = "/compute/v2.1"
ARTIFACTS = E2E_ARTIFACTS / "dashboard"
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


def sign_in(browser, web: str, user: str, password: str = PASSWORD, **context_args):
    return sign_in_as(browser, web, user, password, **context_args)


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
    # The test driver runs no VNC server: the tab says so, not that an ACTIVE server "is not
    # running", and frames no console that could only fail.
    unavailable = page.wait_for_selector("[data-console-unavailable]")
    said = unavailable.inner_text()
    assert "hypervisor has no graphical console" in said and "not running" not in said, said
    assert page.locator("iframe.console").count() == 0
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



# --- issue 12: bulk actions, operators' forms, and the fixes (each test stands alone too)


def boot(api, image: str, name: str) -> str:
    created = api.post(f"{V}/servers", {"server": {
        "name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}})
    assert created.status_code == 202, created.text
    return created.json()["server"]["id"]


def test_bulk_delete_of_two_instances_reports_each_row(member_page, web, wendy_api, people,
                                                       web_1):
    ids = [boot(wendy_api, people["image"], name) for name in ("bulk-a", "bulk-b")]
    for server_id in ids:
        wait_server(wendy_api, server_id, "ACTIVE")
    page = member_page
    page.goto(f"{web}/instances/")
    wait_live(page)
    bar = page.locator("[data-bulk-bar]")
    assert bar.locator('button[data-bulk="delete"]').is_hidden()  # nothing selected yet
    for name in ("bulk-a", "bulk-b"):
        row(page, name).locator('input[name="ids"]').check()
    assert "2 selected" in bar.locator("[data-selected-count]").inner_text()
    bar.locator('button[data-bulk="delete"]').click()
    confirm = page.wait_for_selector('dialog#dialog[open] form[data-bulk-confirm="delete"]')
    assert "bulk-a" in confirm.inner_text() and "bulk-b" in confirm.inner_text()
    shot(page, "bulk-delete-confirm", full_page=False)
    page.click('form[data-bulk-confirm="delete"] button[type=submit]')
    done = page.wait_for_selector('dialog#dialog[open] [data-bulk-done="delete"]')
    outcomes = {li.get_attribute("data-instance"): li.get_attribute("data-outcome")
                for li in done.query_selector_all("li[data-outcome]")}
    assert outcomes == dict.fromkeys(ids, "done")
    assert "Deleting bulk-a." in done.inner_text() and "Deleting bulk-b." in done.inner_text()
    shot(page, "bulk-delete-done", full_page=False)
    page.click("dialog#dialog[open] [data-close-dialog]")
    for name in ("bulk-a", "bulk-b"):  # the rows go over the websocket
        row(page, name).wait_for(state="detached", timeout=LIVE_TIMEOUT)
    assert row(page, "web-1").count() == 1  # not selected, not touched
    for server_id in ids:
        deadline = time.monotonic() + LIVE_TIMEOUT / 1000
        while wendy_api.get(f"{V}/servers/{server_id}").status_code != 404:
            assert time.monotonic() < deadline, f"{server_id} was not deleted"
            time.sleep(0.2)


def test_an_admin_edits_a_projects_quota_and_the_api_obeys_it(browser, web, stack, people,
                                                              wendy_api):
    project = people["projects"]["web"]
    page = sign_in(browser, web, "admin", stack.admin_password)
    try:
        page.goto(f"{web}/manage/projects/")
        page.locator(f'tr[data-project="{project}"] a[data-project-quotas]').click()
        page.wait_for_selector("#quota-form")
        page.fill("#id_key_pairs", "7")
        page.fill("#id_cores", "33")
        shot(page, "admin-project-quotas")
        page.click("#quota-form button[type=submit]")
        page.wait_for_selector(".messages li:has-text('Quotas of web updated.')")
        assert page.input_value("#id_cores") == "33"
    finally:
        page.context.close()
    quota = stack.client().get(f"{V}/os-quota-sets/{project}").json()["quota_set"]
    assert (quota["cores"], quota["key_pairs"]) == (33, 7)
    limits = wendy_api.get(f"{V}/limits").json()["limits"]["absolute"]
    assert limits["maxTotalCores"] == 33


def test_the_actions_menu_of_the_last_row_is_fully_visible(browser, web, wendy_api, people,
                                                           web_1):
    ids = [boot(wendy_api, people["image"], f"menu-{n}") for n in range(3)]
    for server_id in ids:
        wait_server(wendy_api, server_id, "ACTIVE")
    page = sign_in(browser, web, "wendy", viewport={"width": 1100, "height": 640})
    try:
        # Oldest first: the last row is an ACTIVE instance with a long menu.
        page.goto(f"{web}/instances/?sort=created")
        last = page.locator("tr[data-instance]").last
        last.evaluate("(tr) => tr.scrollIntoView({block: 'end'})")
        page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
        last.locator("details.menu > summary").click()
        items = last.locator("details.menu[open] .menu-items")
        items.wait_for()
        box = items.bounding_box()
        view = page.viewport_size
        assert box and box["y"] >= 0 and box["x"] >= 0, box
        assert box["y"] + box["height"] <= view["height"], (box, view)
        assert box["x"] + box["width"] <= view["width"], (box, view)
        # Not clipped by the table's scrolling box either: the last item is what a click hits.
        last_item = items.locator("a").last
        hit = last_item.evaluate("""(a) => { const r = a.getBoundingClientRect();
            const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return at === a || a.contains(at); }""")
        assert hit, "the last entry of the menu is hidden"
        shot(page, "menu-last-row", full_page=False)
        last_item.click()  # and it works: its dialog opens
        page.wait_for_selector("dialog#dialog[open] form[data-confirm]")
    finally:
        page.context.close()
        for server_id in ids:
            wendy_api.delete(f"{V}/servers/{server_id}")


def test_the_launch_quota_preview_follows_count(member_page, web, people):
    page = member_page
    page.goto(f"{web}/instances/")
    page.click("#launch-button")
    page.wait_for_selector("dialog#dialog[open] #launch-form")
    page.select_option("#id_image", label="cirros-e2e")
    page.select_option("#id_flavor", value="1")
    page.wait_for_selector('#launch-check tr[data-quota="instances"] td:text-is("+1")')
    # Typed, not yet left: the field fires "input" only. The preview must follow anyway.
    page.fill("#id_count", "3")
    page.wait_for_selector('#launch-check tr[data-quota="instances"] td:text-is("+3")')
    page.wait_for_selector('#launch-check tr[data-quota="cores"] td:text-is("+3")')
    shot(page, "launch-count-3", full_page=False)
    page.click("dialog#dialog[open] [data-close-dialog]")


def test_a_required_error_goes_once_the_field_is_filled(member_page, web, people):
    page = member_page
    page.goto(f"{web}/instances/")
    page.click("#launch-button")
    page.wait_for_selector("dialog#dialog[open] #launch-form")
    page.click("#launch-form button[type=submit]")
    page.wait_for_selector("#errors-name .errorlist:has-text('This field is required.')")
    # The image may be left out only for a boot volume: its error says so.
    page.wait_for_selector("#errors-image .errorlist:has-text('Choose an image, or a volume')")
    page.fill("#id_name", "corrected")
    page.wait_for_selector("#errors-name .errorlist", state="detached")
    # The fields still wrong keep theirs.
    assert "Choose an image, or a volume to boot from." in page.inner_text("#errors-image")
    page.select_option("#id_image", label="cirros-e2e")
    page.wait_for_selector("#errors-image .errorlist", state="detached")
    shot(page, "launch-error-cleared", full_page=False)
    page.click("dialog#dialog[open] [data-close-dialog]")


def test_rename_and_rebuild_from_the_instance_menu(member_page, web, wendy_api, people, web_1):
    server_id = boot(wendy_api, people["image"], "to-rename")
    wait_server(wendy_api, server_id, "ACTIVE")
    page = member_page
    page.goto(f"{web}/instances/")
    wait_live(page)
    _act_with(page, "to-rename", "rename", lambda: page.fill("#id_name", "renamed"))
    row(page, "renamed").wait_for(timeout=LIVE_TIMEOUT)
    _act_with(page, "renamed", "rebuild",
              lambda: page.select_option("#id_image", label="cirros-e2e"))
    server = wait_server(wendy_api, server_id, "ACTIVE")
    assert server["name"] == "renamed"
    actions = wendy_api.get(f"{V}/servers/{server_id}/os-instance-actions").json()
    assert "rebuild" in [a["action"] for a in actions["instanceActions"]]
    wendy_api.delete(f"{V}/servers/{server_id}")


def _act_with(page, name: str, action: str, fill) -> None:
    target = row(page, name)
    target.locator("details.menu > summary").click()
    target.locator(f'a[data-action="{action}"]').click()
    page.wait_for_selector(f'dialog#dialog[open] form[data-confirm="{action}"]')
    fill()
    page.click(f'form[data-confirm="{action}"] button[type=submit]')
    page.wait_for_load_state("load")


def test_an_admin_creates_and_edits_a_private_flavor(browser, web, stack, people):
    page = sign_in(browser, web, "admin", stack.admin_password)
    try:
        page.goto(f"{web}/manage/flavors/")
        page.fill("#id_name", "e2e.private")
        page.fill("#id_flavorid", "e2e-private")
        page.fill("#id_vcpus", "2")
        page.fill("#id_ram", "1024")
        page.fill("#id_ephemeral", "2")
        page.fill("#id_swap", "256")
        page.uncheck("#id_is_public")
        page.fill("#id_extra_specs", "hw:cpu_policy=dedicated")
        page.locator("label.inline", has_text="web").locator("input").check()
        page.click("#flavor-form button[type=submit]")
        page.wait_for_selector('tr[data-flavor="e2e-private"]:has-text("private: web")')
        page.goto(f"{web}/manage/flavors/e2e-private/edit")
        assert "deletes this flavor and creates a new one" in page.inner_text("[data-replace-note]")
        page.fill("#id_description", "edited in place")
        page.fill("#id_ram", "2048")
        shot(page, "admin-flavor-edit")
        page.click("#flavor-form button[type=submit]")
        page.wait_for_selector(".messages li:has-text('replaced')")
    finally:
        page.context.close()
    flavor = stack.client().get(f"{V}/flavors/e2e-private").json()["flavor"]
    assert (flavor["ram"], flavor["OS-FLV-EXT-DATA:ephemeral"], flavor["swap"]) == (2048, 2, 256)
    assert flavor["os-flavor-access:is_public"] is False
    assert flavor["description"] == "edited in place"
    specs = stack.client().get(f"{V}/flavors/e2e-private/os-extra_specs").json()
    assert specs["extra_specs"] == {"hw:cpu_policy": "dedicated"}


def test_an_error_under_a_field_goes_when_that_field_is_edited(browser, web, stack, people):
    page = sign_in(browser, web, "admin", stack.admin_password)
    try:
        page.goto(f"{web}/manage/users/")
        page.locator("tr[data-user]", has_text="rita").locator("a[data-user-password]").click()
        page.fill("#id_password", "a-long-password")
        page.fill("#id_confirm", "another-password")
        page.click("#password-form button[type=submit]")
        error = page.locator("#password-form .errorlist", has_text="The two passwords differ.")
        error.wait_for()
        page.fill("#id_confirm", "a-long-password")  # corrected: the old verdict is stale
        error.wait_for(state="detached")
    finally:
        page.context.close()
