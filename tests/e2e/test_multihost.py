"""Many hosts, end to end, on the stack the e2e tests share (tests/e2e/multihost.py: web,
scheduler, conductor, beat and RabbitMQ over three simulated hosts, each a network and mount
namespace with its own libvirtd running real qemu guests), driven only through the APIs a user
has. At most four guests at once.

What a user would notice: anti-affinity lands on three real hosts; a live migration moves a guest
whose counter on the serial console goes on without a gap; cold migration with confirm and with
revert; an abort and a destination whose libvirtd dies mid-copy leave the guest running on its
source and nothing on the destination; a drain empties a host of three guests; the console of a
guest on another host opens in Chromium; and once everything is deleted every host is clean.

Figures (live migration time and downtime from the guest's counter, cold migration time, drain
time, memory per host) are written to artifacts/multihost/figures.json and printed.

Needs root (namespaces, libvirtd): CI runs as root, and there a missing capability fails loudly.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import simhosts
from tests.e2e.conftest import CANVAS_COLOURS, sign_in_as
from tests.e2e.multihost import (
    ARTIFACTS,
    BOOT_TIMEOUT,
    MOVE_TIMEOUT,
    Cloud,
    TickWatch,
    V,
    figure,
    ticks,
    wait_for_text,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(multihost: Cloud) -> Cloud:
    return multihost


# --- the scenarios, in order (they share the stack; each leaves it as it found it) ------------


def test_every_host_reports_its_own_name_address_and_capacity(cloud: Cloud) -> None:
    nodes = cloud.api.get(f"{V}/os-hypervisors/detail").json()["hypervisors"]
    assert sorted((n["hypervisor_hostname"], n["host_ip"], n["state"], n["status"]) for n in nodes) \
        == [("compute-1", "10.77.0.11", "up", "enabled"), ("compute-2", "10.77.0.12", "up",
                                                           "enabled"),
            ("compute-3", "10.77.0.13", "up", "enabled")]
    assert all(n["hypervisor_type"] == "QEMU" and n["vcpus"] > 0 and n["memory_mb"] > 0
               for n in nodes)
    for name, host in cloud.hosts.items():
        pid = host.libvirtd_pid()
        assert pid, f"the libvirtd of {name} is not running"
        rss = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text()
                       .splitlines() if line.startswith("VmRSS:")))
        figure(f"libvirtd RSS of {name} (MB)", round(rss / 1024, 1))


def test_an_anti_affinity_group_lands_on_three_real_hosts(cloud: Cloud) -> None:
    group = cloud.api.post(f"{V}/os-server-groups", {"server_group": {
        "name": "spread", "policies": ["anti-affinity"]}}).json()["server_group"]["id"]
    servers = [cloud.boot(f"spread-{i}", group=group) for i in range(3)]
    try:
        hosts = {s["OS-EXT-SRV-ATTR:host"] for s in cloud.active(*servers)}
        assert hosts == {"compute-1", "compute-2", "compute-3"}
        for server_id in servers:  # each really runs where the API says
            assert server_id in cloud.domains(cloud.host_of(server_id))
        fourth = cloud.boot("spread-3", group=group)
        assert cloud.api.wait_for(fourth, {"ACTIVE", "ERROR"}, BOOT_TIMEOUT)["status"] == "ERROR"
        servers.append(fourth)
    finally:
        cloud.delete(*servers)


def test_a_live_migration_keeps_the_guest_counting_and_moves_its_claim(cloud: Cloud) -> None:
    server_id = cloud.boot("ticker", ticker=True)
    try:
        source = cloud.active(server_id)[0]["OS-EXT-SRV-ATTR:host"]
        wait_for_text(cloud.console_log(source, server_id), "TICK 3")
        before = cloud.usage()
        logs = [cloud.console_log(h, server_id) for h in cloud.hosts]
        watch = TickWatch(*logs)
        started = time.monotonic()
        cloud.action(server_id, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
        server = cloud.settled(server_id)
        took = time.monotonic() - started
        dest = server["OS-EXT-SRV-ATTR:host"]
        assert dest != source and server["status"] == "ACTIVE"
        last = max(ticks(cloud.console_log(dest, server_id).read_text(errors="replace")))
        wait_for_text(cloud.console_log(dest, server_id), f"TICK {last + 3}", timeout=30)
        watch.stop()
        counted = sorted(watch.first_seen)
        assert counted == list(range(counted[0], counted[-1] + 1)), "a tick was lost"
        assert (ticks(cloud.console_log(dest, server_id).read_text(errors="replace"))[0]
                > 1), "the guest restarted instead of moving"
        assert server_id not in cloud.domains(source) and server_id in cloud.domains(dest)
        assert server_id not in cloud.instance_dirs(source)
        (migration,) = cloud.migrations(server_id)
        assert (migration["migration_type"], migration["status"]) == ("live-migration",
                                                                      "completed")
        after = cloud.usage()
        assert after[source][1] == before[source][1] - 128
        assert after[dest][1] == before[dest][1] + 128
        figure("live migration: request to ACTIVE on the destination (s)", round(took, 1))
        figure("live migration: downtime from the guest's counter (ms)", watch.worst_gap_ms())
    finally:
        cloud.delete(server_id)


def test_cold_migration_confirmed_and_reverted(cloud: Cloud) -> None:
    server_id = cloud.boot("cold", ticker=True)
    try:
        source = cloud.active(server_id)[0]["OS-EXT-SRV-ATTR:host"]
        wait_for_text(cloud.console_log(source, server_id), "TICK 2")
        started = time.monotonic()
        cloud.action(server_id, {"migrate": None})
        server = cloud.settled(server_id)
        took = time.monotonic() - started
        dest = server["OS-EXT-SRV-ATTR:host"]
        assert (server["status"], dest != source) == ("VERIFY_RESIZE", True)
        wait_for_text(cloud.console_log(dest, server_id), "TICK 1")
        assert server_id in cloud.domains(source), "the source keeps the guest for a revert"
        cloud.action(server_id, {"confirmResize": None}, expect=204)
        assert cloud.settled(server_id)["status"] == "ACTIVE"
        # The source removes its copy after the confirm's answer, as Nova's does: the domain
        # first, then its files.
        _wait(lambda: server_id not in cloud.domains(source)
              and server_id not in cloud.instance_dirs(source),
              "the source's copy and its files to go")
        figure("cold migration: request to VERIFY_RESIZE (s)", round(took, 1))

        # Back again, and this time reverted: the guest comes back to `dest` with its disk.
        cloud.action(server_id, {"migrate": None})
        moved = cloud.settled(server_id)
        assert moved["status"] == "VERIFY_RESIZE"
        away = moved["OS-EXT-SRV-ATTR:host"]
        cloud.action(server_id, {"revertResize": None})
        back = cloud.settled(server_id)
        assert (back["status"], back["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", dest)
        _wait(lambda: server_id not in cloud.domains(away), "the reverted copy to go")
        assert [m["status"] for m in sorted(cloud.migrations(server_id),
                                            key=lambda m: m["id"])] == ["confirmed", "reverted"]
    finally:
        cloud.delete(server_id)


def test_an_aborted_live_migration_leaves_the_guest_on_its_source(cloud: Cloud) -> None:
    server_id = cloud.boot("abort", ticker=True)
    try:
        source = cloud.active(server_id)[0]["OS-EXT-SRV-ATTR:host"]
        wait_for_text(cloud.console_log(source, server_id), "TICK 2")
        cloud.slow_copies(source, server_id, 1)
        cloud.action(server_id, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
        migration = _wait(lambda: next((m for m in cloud.migrations(server_id)
                                        if m["status"] == "running"), None),
                          "the copy to run")
        dest = migration["dest_compute"]
        response = cloud.api.delete(f"{V}/servers/{server_id}/migrations/{migration['id']}")
        assert response.status_code == 202, response.text
        server = cloud.settled(server_id)
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", source)
        assert cloud.migrations(server_id)[0]["status"] == "cancelled"
        last = max(ticks(cloud.console_log(source, server_id).read_text(errors="replace")))
        wait_for_text(cloud.console_log(source, server_id), f"TICK {last + 2}", timeout=30)
        _assert_nothing_left_on(cloud, dest, server_id)
    finally:
        cloud.delete(server_id)


def test_a_destination_whose_libvirtd_dies_mid_copy_leaves_the_guest_on_its_source(
        cloud: Cloud) -> None:
    server_id = cloud.boot("survivor", ticker=True)
    source = cloud.active(server_id)[0]["OS-EXT-SRV-ATTR:host"]
    dest = next(h for h in cloud.hosts if h != source)
    try:
        wait_for_text(cloud.console_log(source, server_id), "TICK 2")
        cloud.slow_copies(source, server_id, 1)
        cloud.action(server_id, {"os-migrateLive": {"host": dest, "block_migration": "auto"}})
        _wait(lambda: any(m["status"] == "running" for m in cloud.migrations(server_id)),
              "the copy to run")
        simhosts.stop_libvirtd(cloud.hosts[dest], guests=True)  # the machine dies
        server = cloud.settled(server_id)
        assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", source)
        assert cloud.migrations(server_id)[0]["status"] in ("failed", "error")
        last = max(ticks(cloud.console_log(source, server_id).read_text(errors="replace")))
        wait_for_text(cloud.console_log(source, server_id), f"TICK {last + 2}", timeout=30)
    finally:
        simhosts.start_libvirtd(cloud.hosts[dest])  # the machine comes back
    try:
        _assert_nothing_left_on(cloud, dest, server_id)
    finally:
        cloud.delete(server_id)


def test_a_drain_empties_a_host_of_three_guests(cloud: Cloud, browser) -> None:
    """Started from the hypervisors page's Drain button; the drain's page follows every guest's
    move as it happens (pushed over its websocket: the page is never reloaded)."""
    # Three guests on compute-1: the others take none while these boot.
    for other in ("compute-2", "compute-3"):
        cloud.set_enabled(other, False)
    try:
        servers = [cloud.boot(f"drained-{i}") for i in range(3)]
        assert {s["OS-EXT-SRV-ATTR:host"] for s in cloud.active(*servers)} == {"compute-1"}
    finally:
        for other in ("compute-2", "compute-3"):
            cloud.set_enabled(other, True)
    web = cloud.stack.url
    page = sign_in_as(browser, web, "admin", cloud.stack.admin_password)
    try:
        page.goto(f"{web}/manage/hypervisors/")
        page.click("a[aria-label='Drain compute-1']")
        page.fill("#id_reason", "patching")
        started = time.monotonic()
        page.get_by_role("button", name="Drain compute-1").click()
        page.wait_for_url(re.compile(r".*/manage/drains/[0-9a-f-]+/$"))
        drain_id = page.url.rstrip("/").rsplit("/", 1)[1]
        page.evaluate("window.__notReloaded = true")
        page.locator('#drain-guests[data-live="on"]').wait_for(timeout=10_000)
        # A guest shown moving, then the drain shown completed: both pushed, never reloaded.
        page.locator('tr[data-state="moving"]').first.wait_for(timeout=MOVE_TIMEOUT * 1000)
        page.locator('[data-drain-status="completed"]').wait_for(
            timeout=3 * MOVE_TIMEOUT * 1000)
        took = time.monotonic() - started
        assert page.evaluate("window.__notReloaded") is True
        assert page.locator('tr[data-state="done"]').count() == 3

        drain = cloud.api.get(f"{V}/os-host-drains/{drain_id}").json()["host_drain"]
        assert drain["status"] == "completed", drain
        assert drain["summary"] == {"pending": 0, "moving": 0, "done": 3, "failed": 0}
        for server_id in servers:
            server = cloud.show(server_id)
            assert (server["status"], server["OS-EXT-SRV-ATTR:host"] != "compute-1") == (
                "ACTIVE", True)
        assert cloud.domains("compute-1") == [] and cloud.instance_dirs("compute-1") == []
        assert cloud.usage()["compute-1"] == (0, 0)
        services = cloud.api.get(f"{V}/os-services?host=compute-1").json()["services"]
        assert [(s["status"], s["disabled_reason"]) for s in services
                if s["binary"] == "nova-compute"] == [("disabled", "patching")]
        figure("drain of 3 guests: request to completed (s)", round(took, 1))
    finally:
        page.context.close()
        cloud.set_enabled("compute-1", True)
        cloud.delete(*servers)


def test_the_console_of_a_guest_on_another_host_opens_in_the_browser(cloud: Cloud,
                                                                     browser) -> None:
    """Every simulated host's guests draw on a unix socket in the host's own directory; the web
    process's relay opens it, through the same origin and token rules as any console."""
    server_id = cloud.boot("screen")
    try:
        host = cloud.active(server_id)[0]["OS-EXT-SRV-ATTR:host"]

        def console_url() -> str | None:
            response = cloud.api.post(f"{V}/servers/{server_id}/remote-consoles",
                                      {"remote_console": {"protocol": "vnc", "type": "novnc"}})
            assert response.status_code == 200, response.text
            url = response.json()["remote_console"]["url"]
            status = cloud.api.session.get(url.replace("/console/?", "/console/status?"),
                                           timeout=10)
            return url if status.json()["state"] == "ready" else None

        url = _wait(console_url, "a console the host reported a socket for", timeout=60)
        assert url.startswith(f"{cloud.stack.url}/console/?token=")
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.goto(url)
        page.wait_for_selector('body[data-state="connected"]', timeout=60_000)
        colours = _wait(lambda: (n := page.evaluate(CANVAS_COLOURS)[0]) > 1 and n,
                        "the guest's text on the canvas", timeout=60)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"console-on-{host}.png"))
        assert colours > 1
        page.close()
    finally:
        cloud.delete(server_id)


def test_every_host_is_clean_once_everything_is_deleted(cloud: Cloud) -> None:
    servers = cloud.api.get(f"{V}/servers?all_tenants=1").json()["servers"]
    assert servers == []
    for host in cloud.hosts:
        assert cloud.domains(host) == [], host
        assert cloud.instance_dirs(host) == [], host
    assert set(cloud.usage().values()) == {(0, 0)}


# --- helpers ------------------------------------------------------------------------------------


def _wait(check, what: str, timeout: float = MOVE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _assert_nothing_left_on(cloud: Cloud, host: str, server_id: str) -> None:
    """No domain, no disk, no claim of the guest on `host` (after its next reports)."""
    _wait(lambda: server_id not in cloud.domains(host), f"no domain on {host}", timeout=60)
    _wait(lambda: server_id not in cloud.instance_dirs(host), f"no files on {host}", timeout=60)
    assert cloud.usage()[host] == (0, 0)
