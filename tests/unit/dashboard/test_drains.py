"""Host drains in the dashboard: the Drain button on the hypervisors page, the confirmation that
starts one as POST /os-host-drains does, the page that follows each guest, and its websocket, which
pushes the guests' table at every change of the drained host's moves (to admins only)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

from cloud import events
from cloud.compute import host_drains
from cloud.compute.models import Allocation, ComputeNode, HostDrain, Service
from cloud.dashboard.routing import websocket_urlpatterns
from cloud.identity.context import RequestContext
from cloud.scheduler import drains
from compute_agent import messages as msg
from tests.factories import make_server, migratable_hosts

from .conftest import signed_in

application = URLRouter(websocket_urlpatterns)


@pytest.fixture
def hosts(db):
    """Two hosts that take migrations, both up."""
    return migratable_hosts(2)


def _guests(owner):
    """Two running guests on compute-1, with their claims, as a boot leaves them."""
    made = []
    for name in ("web-1", "web-2"):
        made.append(make_server(
            owner, name, host="compute-1", node="compute-1", vcpus=1, memory_mb=256, root_gb=1,
            flavor_snapshot={"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 256, "disk": 1,
                             "ephemeral": 0, "swap": 0, "extra_specs": {}}))
        Allocation.objects.create(instance=made[-1], node=ComputeNode.objects.get(host="compute-1"),
                                  vcpus=1, memory_mb=256, disk_gb=1)
    return made


@pytest.mark.django_db
def test_admins_see_a_drain_button_per_host_and_members_no_page(admin, member, hosts):
    page = signed_in(admin).get("/manage/hypervisors/").content.decode()
    assert 'href="/manage/hypervisors/compute-1/drain"' in page
    assert 'href="/manage/hypervisors/compute-2/drain"' in page
    assert signed_in(member).get("/manage/hypervisors/compute-1/drain").status_code == 403


@pytest.mark.django_db
def test_the_drain_button_disables_the_host_and_starts_moving_its_guests(admin, member, hosts,
                                                                          sent):
    _guests(member)
    browser = signed_in(admin)
    confirm = browser.get("/manage/hypervisors/compute-1/drain").content.decode()
    assert "web-1" in confirm and "web-2" in confirm  # what will move, before it moves

    response = browser.post("/manage/hypervisors/compute-1/drain", {"reason": "kernel update"})
    drain = HostDrain.objects.get(host="compute-1")
    assert response.status_code == 302 and response["Location"] == f"/manage/drains/{drain.uuid}/"
    service = Service.objects.get(host="compute-1", binary="nova-compute")
    assert service.disabled and service.disabled_reason == "kernel update"
    assert [s.name for s in sent] == [msg.TASK_KICK_DRAIN]  # sent once, after the commit

    page = browser.get(f"/manage/drains/{drain.uuid}/").content.decode()
    assert page.count('data-state="pending"') == 2
    hypervisors = browser.get("/manage/hypervisors/").content.decode()
    assert f'href="/manage/drains/{drain.uuid}/">draining' in hypervisors
    assert 'href="/manage/hypervisors/compute-1/drain"' not in hypervisors

    again = browser.post("/manage/hypervisors/compute-1/drain", {"reason": "twice"})
    assert again.status_code == 400 and "already being drained" in again.content.decode()
    assert HostDrain.objects.filter(host="compute-1").count() == 1


@pytest.mark.django_db
def test_the_drain_page_shows_each_move_and_stops_on_request(admin, member, hosts, sent):
    _guests(member)
    browser = signed_in(admin)
    browser.post("/manage/hypervisors/compute-1/drain", {"reason": "patching"})
    drain = HostDrain.objects.get(host="compute-1")
    drains.kick(str(drain.uuid))  # the scheduler's step: the first guest starts moving
    page = browser.get(f"/manage/drains/{drain.uuid}/").content.decode()
    assert 'data-state="moving"' in page and "live-migration to compute-2" in page
    assert 'data-state="pending"' in page

    browser.post(f"/manage/drains/{drain.uuid}/cancel")
    drain.refresh_from_db()
    assert drain.status == HostDrain.CANCELLED
    page = browser.get(f"/manage/drains/{drain.uuid}/").content.decode()
    assert "The drain was cancelled." in page and "/cancel" not in page


def _ctx(persona) -> RequestContext:
    return RequestContext(user_id=persona.user.pk, user_name=persona.user.name,
                          project_id=persona.project.pk, project_name=persona.project.name,
                          roles=("admin", "member", "reader"))


def run(coro):
    return asyncio.run(coro)


def _communicator(cookie: bytes, drain_id: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/host-moves/?drain={drain_id}",
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)])


@pytest.mark.django_db(transaction=True)
def test_the_drain_page_is_pushed_each_change_of_its_host_s_moves(admin, member, hosts):
    _guests(member)
    drain = host_drains.start(_ctx(admin), "compute-1", "patching")
    cookies = [f"sessionid={signed_in(p).cookies['sessionid'].value}".encode()
               for p in (admin, member)]

    async def scenario():
        watcher = _communicator(cookies[0], str(drain.uuid))
        connected, _ = await watcher.connect(timeout=5)
        assert connected
        first = await watcher.receive_json_from(timeout=5)  # the table as it is now
        await sync_to_async(events.host_moves_changed)("compute-2")  # another host's moves
        quiet = await watcher.receive_nothing(timeout=0.3)
        await sync_to_async(host_drains.cancel)(drain)
        pushed = await watcher.receive_json_from(timeout=5)
        await watcher.disconnect()
        stranger = _communicator(cookies[1], str(drain.uuid))
        refused, code = await stranger.connect(timeout=5)
        return first, quiet, pushed, refused, code

    try:
        first, quiet, pushed, refused, code = run(scenario())
    finally:
        run(sync_to_async(connections.close_all)())
    assert first["type"] == "drain" and first["html"].count('data-state="pending"') == 2
    assert quiet
    assert pushed["status"] == "cancelled" and "The drain was cancelled." in pushed["html"]
    assert not refused and code == 4403
