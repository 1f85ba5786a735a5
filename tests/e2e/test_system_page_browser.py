"""The admin System page in a real browser (headless Chromium, no stack: Django's live test server
on the test database, the metrics counted in this process's memory). An admin opens it from the
navigation, the charts fill as the page fetches its data every step, and two boots and a boot
refused by RamFilter show up without a reload. Screenshot in KUMO_ARTIFACTS_DIR/dashboard."""

from __future__ import annotations

import pytest

from cloud import metrics
from cloud.metrics import families, store
from tests.e2e.conftest import ARTIFACTS as E2E_ARTIFACTS
from tests.e2e.conftest import sign_in_as
from tests.factories import make_node
from tests.personas import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = E2E_ARTIFACTS / "dashboard"
TIMEOUT = 20_000  # ms: the page asks every 5 s and a rate needs two samples

# The newest value of one dataset of a chart, as Chart.js holds it.
NEWEST = """([chart, set]) => {
  const c = window.Chart.getChart(document.querySelector(`canvas[data-chart="${chart}"]`));
  const data = c ? c.data.datasets[set]?.data || [] : [];
  return data.length ? data[data.length - 1] : null;
}"""


@pytest.fixture(scope="module", autouse=True)
def _database_beside_playwright():
    # As in test_network_panels_browser.py: Playwright's loop in this thread makes Django take
    # the test's plain database calls for async ones.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def test_an_admin_watches_boots_and_failures_arrive(browser, live_server, admin, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.CELERY_BROKER_URL = "memory://"
    recorded = store.current()
    assert isinstance(recorded, store.MemoryStore)
    recorded.clear()
    make_node("compute-1", vcpus=4)
    errors: list[str] = []
    page = sign_in_as(browser, live_server.url, admin.user.name, PASSWORD)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.click('nav.main a[href="/manage/system/"]')
    page.wait_for_selector("h1:has-text('System')")
    page.wait_for_function("Number(document.querySelector('[data-system-charts]')"
                           ".dataset.points || 0) >= 1", timeout=TIMEOUT)
    assert page.evaluate(NEWEST, ["boots", 0]) == 0
    assert "compute-1" in page.locator("[data-host-rows]").inner_text()

    for outcome in ("active", "active", "no_valid_host"):  # as the scheduler and conductor count
        placed = outcome == "active"
        metrics.observe(families.SCHEDULER_DECISIONS, 0.004, "placed" if placed else outcome)
        metrics.inc(families.BOOTS, outcome)
    metrics.inc(families.NO_VALID_HOST, "RamFilter")

    page.wait_for_function(f"({NEWEST})(['boots', 0]) > 0", timeout=TIMEOUT)
    assert page.evaluate(NEWEST, ["boots", 1]) > 0  # the failed one
    filters = page.evaluate("""() => window.Chart.getChart(
        document.querySelector('canvas[data-chart="filters"]')).data.labels""")
    assert filters == ["RamFilter"]
    assert "active" in page.locator('[data-now="boots"]').inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "system.png"), full_page=True)
    assert errors == []
    recorded.clear()
