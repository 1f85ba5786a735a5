"""Host failures in the dashboard: each host's state in words on the hypervisors page, the
"Confirm host is off" button the manual fencing driver waits for (admins only, only while a failure
waits for it, refused while the host still reports), the page of one failure with its guests'
recovery, the history of recoveries, and the websocket that pushes a failure's page at every change
of its host."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from cloud import events
from cloud.compute import host_failures as hf
from cloud.compute.models import COMPUTE_BINARY, HostFailure, Service
from cloud.dashboard.routing import websocket_urlpatterns
from tests.factories import host_up, migratable_hosts

from .conftest import signed_in

application = URLRouter(websocket_urlpatterns)

AWAITING_MESSAGE = "The manual fencing driver waits for an operator to confirm compute-1 is off."


def _silent(host: str) -> Service:
    return host_up(host, up=False)


def _fail(host: str, status: str, **fields) -> HostFailure:
    """An open failure of `host` as the host watch leaves it; the host is silent."""
    _silent(host)
    return HostFailure.objects.create(host=host, status=status, fencing_driver="manual", **fields)


def _row(page: str, host: str) -> str:
    """The hypervisors page's row of one host."""
    found = re.search(rf'<tr data-host="{host}">.*?</tr>', page, re.DOTALL)
    assert found, f"no row for {host}"
    return found.group(0)


def _state(page: str, host: str) -> str:
    found = re.search(r'data-host-state="([^"]*)"', _row(page, host))
    assert found
    return found.group(1)


def _confirm_action(host: str) -> str:
    return f'action="/manage/hypervisors/{host}/confirm-down"'


@pytest.fixture
def hosts(db):
    return migratable_hosts(7)


@pytest.mark.django_db
def test_the_hypervisors_page_says_each_host_s_state_in_words(admin, hosts):
    Service.objects.filter(host="compute-3").update(disabled=True)
    Service.objects.filter(host="compute-4").update(forced_down=True)
    _silent("compute-2")
    suspected = _fail("compute-5", hf.SUSPECTED, message="Fencing compute-5 in 10 s.")
    waiting = _fail("compute-6", hf.AWAITING_CONFIRMATION, message=AWAITING_MESSAGE)
    recovering = _fail("compute-7", hf.RECOVERING, fenced_at=timezone.now())
    # compute-1 failed once and came back: a closed failure is history, not its state.
    HostFailure.objects.create(host="compute-1", status=hf.REJOINED, closed_at=timezone.now())

    page = signed_in(admin).get("/manage/hypervisors/").content.decode()

    assert _state(page, "compute-1") == "up"
    assert _state(page, "compute-2") == "down (no heartbeat)"
    assert _state(page, "compute-3") == "disabled"
    assert _state(page, "compute-4") == "forced down"
    assert _state(page, "compute-5") == "down, fencing soon"
    assert _state(page, "compute-6") == "down, awaiting fencing confirmation"
    assert _state(page, "compute-7") == "fenced, recovering its guests"
    for failure in (suspected, waiting, recovering):
        assert f'href="/manage/host-failures/{failure.uuid}/"' in _row(page, failure.host)
    assert "/manage/host-failures/" not in _row(page, "compute-1")
    assert AWAITING_MESSAGE in _row(page, "compute-6")  # what it waits for, in words
    assert 'href="/manage/host-failures/">Recoveries' in page


@pytest.mark.django_db
def test_the_confirm_button_shows_for_admins_only_while_a_failure_waits_for_it(admin, member,
                                                                               hosts):
    _silent("compute-2")
    waiting = _fail("compute-6", hf.AWAITING_CONFIRMATION, message=AWAITING_MESSAGE)
    recovering = _fail("compute-7", hf.RECOVERING, fenced_at=timezone.now())
    browser = signed_in(admin)

    page = browser.get("/manage/hypervisors/").content.decode()
    assert _confirm_action("compute-6") in _row(page, "compute-6")
    assert "Confirm host is off" in _row(page, "compute-6")
    for host in ("compute-1", "compute-2", "compute-7"):  # up, silent without failure, fenced
        assert "confirm-down" not in _row(page, host)
    assert _confirm_action("compute-6") in browser.get(
        f"/manage/host-failures/{waiting.uuid}/").content.decode()
    assert "confirm-down" not in browser.get(
        f"/manage/host-failures/{recovering.uuid}/").content.decode()

    assert signed_in(member).get("/manage/hypervisors/").status_code == 403
    assert signed_in(member).get(f"/manage/host-failures/{waiting.uuid}/").status_code == 403
    assert signed_in(member).get("/manage/host-failures/").status_code == 403


@pytest.mark.django_db
def test_confirming_forces_the_silent_host_down(admin, hosts):
    _fail("compute-6", hf.AWAITING_CONFIRMATION, message=AWAITING_MESSAGE)

    response = signed_in(admin).post("/manage/hypervisors/compute-6/confirm-down",
                                     {"from": "hosts"}, follow=True)

    assert response.redirect_chain == [("/manage/hypervisors/", 302)]
    assert Service.objects.get(host="compute-6", binary=COMPUTE_BINARY).forced_down
    assert "compute-6 is confirmed off and forced down" in response.content.decode()


@pytest.mark.django_db
def test_confirming_a_host_that_still_reports_is_refused_with_the_reason(admin, hosts):
    failure = _fail("compute-6", hf.AWAITING_CONFIRMATION, message=AWAITING_MESSAGE)
    host_up("compute-6")  # it reported since: it is not off

    response = signed_in(admin).post("/manage/hypervisors/compute-6/confirm-down", follow=True)

    assert response.redirect_chain == [(f"/manage/host-failures/{failure.uuid}/", 302)]
    assert "compute-6 is still reporting: it is not down." in response.content.decode()
    assert not Service.objects.get(host="compute-6", binary=COMPUTE_BINARY).forced_down


@pytest.mark.django_db
def test_confirming_a_host_no_failure_waits_for_changes_nothing(admin, hosts):
    _fail("compute-7", hf.RECOVERING, fenced_at=timezone.now())
    _silent("compute-2")
    browser = signed_in(admin)

    for host in ("compute-2", "compute-7"):
        page = browser.post(f"/manage/hypervisors/{host}/confirm-down", follow=True)
        assert f"Nothing waits for a confirmation that {host} is off." in page.content.decode()
    assert not Service.objects.filter(host__in=["compute-2", "compute-7"],
                                      forced_down=True).exists()


@pytest.mark.django_db
def test_a_member_may_not_confirm_a_host_is_off(member, hosts):
    _fail("compute-6", hf.AWAITING_CONFIRMATION, message=AWAITING_MESSAGE)

    response = signed_in(member).post("/manage/hypervisors/compute-6/confirm-down")

    assert response.status_code == 403
    assert not Service.objects.get(host="compute-6", binary=COMPUTE_BINARY).forced_down


def _recovering(host: str = "compute-1") -> HostFailure:
    now = timezone.now()
    return _fail(host, hf.RECOVERING, fenced_at=now, fence_attempts=1,
                 message="Fenced. Recovering 2 HA server(s) of 3; the others stay until evacuated.",
                 guests=[
                     {"id": "11111111-1111-4111-8111-111111111111", "name": "db-1", "ha": True,
                      "state": hf.DONE, "dest": "compute-2", "message": ""},
                     {"id": "22222222-2222-4222-8222-222222222222", "name": "web-1", "ha": True,
                      "state": hf.EVACUATING, "dest": "compute-3", "message": ""},
                     {"id": "33333333-3333-4333-8333-333333333333", "name": "scratch", "ha": False,
                      "state": hf.LEFT, "dest": "",
                      "message": "not marked for HA: evacuate it by hand, or it returns with "
                                 "its host"},
                 ])


@pytest.mark.django_db
def test_the_failure_page_lists_each_guest_s_part_in_the_recovery(admin, hosts):
    failure = _recovering()

    page = signed_in(admin).get(f"/manage/host-failures/{failure.uuid}/").content.decode()

    assert "fenced, recovering its guests" in page and "Fenced. Recovering 2 HA server(s)" in page
    assert "manual" in page  # the fencing driver
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r'<tr data-guest="([^"]+)" data-state="[^"]*">.*?</tr>', page, re.DOTALL)}
    db, web, scratch = (rows[g["id"]] for g in failure.guests)
    assert 'data-state="done"' in db and "compute-2" in db and "<td>yes</td>" in db
    assert 'href="/instances/11111111-1111-4111-8111-111111111111/">db-1</a>' in db
    assert 'data-state="evacuating"' in web and "compute-3" in web
    assert 'data-state="left"' in scratch and "<td>no</td>" in scratch
    assert "evacuate it by hand" in scratch
    assert "1 recovered, 1 evacuating, 0 waiting, 0 failed, 1 left" in page
    assert signed_in(admin).get("/manage/host-failures/not-a-uuid/").status_code == 404


@pytest.mark.django_db
def test_the_recoveries_page_lists_every_failure_newest_first(admin, hosts):
    old = HostFailure.objects.create(host="compute-2", status=hf.CLEARED,
                                     closed_at=timezone.now())
    HostFailure.objects.filter(pk=old.pk).update(detected_at=timezone.now() - timedelta(days=1))
    new = _recovering("compute-1")

    page = signed_in(admin).get("/manage/host-failures/").content.decode()

    links = re.findall(r'href="/manage/host-failures/([^/]+)/"', page)
    assert links == [str(new.uuid), str(old.uuid)]
    assert "1 of 3 recovered, 1 left" in page


def run(coro):
    return asyncio.run(coro)


def _communicator(cookie: bytes, failure_id: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/host-moves/?failure={failure_id}",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)])


def _fence_and_announce(failure: HostFailure) -> None:
    """What the host watch does when the failure moves: the change, then its announcement."""
    HostFailure.objects.filter(pk=failure.pk).update(
        status=hf.RECOVERING, fenced_at=timezone.now(), message="Fenced. Recovering 1 HA server(s).",
        guests=[{"id": "11111111-1111-4111-8111-111111111111", "name": "db-1", "ha": True,
                 "state": hf.EVACUATING, "dest": "compute-2", "message": ""}])
    events.host_moves_changed(failure.host)


@pytest.mark.django_db(transaction=True)
def test_the_failure_page_is_pushed_each_change_of_its_host(admin, member, hosts):
    failure = _fail("compute-1", hf.AWAITING_CONFIRMATION, message=AWAITING_MESSAGE)
    cookies = [f"sessionid={signed_in(p).cookies['sessionid'].value}".encode()
               for p in (admin, member)]

    async def scenario():
        watcher = _communicator(cookies[0], str(failure.uuid))
        connected, _ = await watcher.connect(timeout=5)
        assert connected
        first = await watcher.receive_json_from(timeout=5)  # the page as it is now
        await sync_to_async(events.host_moves_changed)("compute-2")  # another host's change
        quiet = await watcher.receive_nothing(timeout=0.3)
        await sync_to_async(_fence_and_announce)(failure)
        pushed = await watcher.receive_json_from(timeout=5)
        await watcher.disconnect()
        stranger = _communicator(cookies[1], str(failure.uuid))
        refused, code = await stranger.connect(timeout=5)
        return first, quiet, pushed, refused, code

    try:
        first, quiet, pushed, refused, code = run(scenario())
    finally:
        run(sync_to_async(connections.close_all)())
    assert first["type"] == "failure" and first["status"] == hf.AWAITING_CONFIRMATION
    assert AWAITING_MESSAGE in first["html"]
    assert quiet
    assert pushed["status"] == hf.RECOVERING and not pushed["closed"]
    assert 'data-state="evacuating"' in pushed["html"] and "db-1" in pushed["html"]
    assert not refused and code == 4403
