"""The networking panels in a real browser (headless Chromium, as test_dashboard_browser.py), but
cheap: no stack, only Django's live test server on the test database. A member signs in, creates a
network with its subnet and a router with a gateway and an interface through the forms, and watches
the topology page draw them — and draw an instance that appears later, without a reload (the
picture is fetched again every few seconds). Screenshots go to KUMO_ARTIFACTS_DIR/dashboard."""

from __future__ import annotations

import pytest

from cloud.network import ipam
from cloud.network.models import Network, Router, Subnet
from tests.e2e.conftest import ARTIFACTS as E2E_ARTIFACTS
from tests.e2e.conftest import sign_in_as
from tests.factories import make_server
from tests.personas import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = E2E_ARTIFACTS / "dashboard"
REDRAW_TIMEOUT = 15_000  # ms: the page fetches the picture every 5 s


@pytest.fixture(scope="module", autouse=True)
def _database_beside_playwright():
    # Playwright's sync API keeps an event loop in this thread, so Django takes every database
    # call here (the test's and the test database's own set-up and flush) for one made from async
    # code; they are plain sequential calls. Module-scoped: it outlives the database fixtures.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_member_builds_a_network_and_the_topology_follows(browser, live_server, member,
                                                              settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    public = Network.objects.create(name="public", external=True, network_type="flat",
                                    physical_network="public", mtu=1500)
    Subnet.objects.create(network=public, cidr="172.24.4.0/24", gateway_ip="172.24.4.1",
                          allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}])
    web = live_server.url
    page = sign_in_as(browser, web, member.user.name, PASSWORD)

    page.click('nav.main a[href="/networks/"]')
    page.fill("#id_name", "frontend")
    page.fill("#id_cidr", "10.20.0.0/24")
    page.fill("#id_dns_nameservers", "192.0.2.53")
    page.click("#network-form button[type=submit]")
    page.wait_for_selector("h1:has-text('Network frontend')")
    assert page.locator("tr[data-subnet] td.mono").first.inner_text() == "10.20.0.0/24"
    network = Network.objects.get(name="frontend")

    page.click('nav.main a[href="/routers/"]')
    page.fill("#id_name", "edge")
    page.select_option("#id_external_network", str(public.id))
    page.click("#router-form button[type=submit]")
    page.wait_for_selector("h1:has-text('Router edge')")
    page.select_option("#id_subnet", str(network.subnets.get().id))
    page.click("#interface-form button[type=submit]")
    page.wait_for_selector("tr[data-interface] >> text=10.20.0.1")
    router = Router.objects.get(name="edge")

    page.click('nav.main a[href="/topology/"]')
    page.wait_for_selector(f'svg[data-topology] g[data-router="{router.id}"]')
    assert page.locator(f'svg [data-network="{network.id}"]').count() == 1
    _shot(page, "network-topology-empty")

    # An instance with a port appears in the picture without the page being reloaded
    server = make_server(member, "web-1")
    ipam.allocate_port(network, member.project.pk, str(server.uuid))
    page.wait_for_selector(f'svg g[data-instance="{server.uuid}"]', timeout=REDRAW_TIMEOUT)
    assert "10.20.0.2" in (page.locator(f'svg g[data-instance="{server.uuid}"]')
                          .text_content() or "")
    _shot(page, "network-topology")
