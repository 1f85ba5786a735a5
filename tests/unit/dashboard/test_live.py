"""Live status: the conductor's changes reach the dashboards of the instance's project over the
websocket (live.py, consumers.py, routing.py), and nobody else's."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

from cloud.conductor.instance_events import apply_instance_event
from cloud.dashboard import live
from cloud.dashboard.routing import websocket_urlpatterns
from compute_agent import messages as msg
from tests.factories import make_server

from .conftest import signed_in

application = URLRouter(websocket_urlpatterns)


def run(coro):
    return asyncio.run(coro)


def _spawned(instance) -> None:
    apply_instance_event(msg.InstanceEvent(
        request_id="req-1", instance_uuid=str(instance.uuid), host=instance.host,
        event=msg.EVENT_SPAWNED, power_state=msg.POWER_RUNNING,
    ))


@pytest.mark.django_db
def test_a_change_is_published_only_after_it_commits(member, django_capture_on_commit_callbacks):
    vm = make_server(member, "vm1", vm_state="building", task_state="spawning")
    layer = get_channel_layer()
    channel = run(layer.new_channel())
    run(layer.group_add(live.group_for(member.project.pk), channel))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _spawned(vm)
    assert len(callbacks) == 1  # nothing was sent before the commit
    for callback in callbacks:
        callback()
    message = run(layer.receive(channel))
    assert message == {"type": live.EVENT_TYPE, "uuid": str(vm.uuid)}


@pytest.mark.django_db
def test_a_broken_channel_layer_never_fails_the_change(member, monkeypatch):
    vm = make_server(member, "vm1")

    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(live, "get_channel_layer", broken)
    live.publish(str(vm.uuid))  # logged, not raised


# --- the websocket


def _session_cookie(persona) -> bytes:
    return f"sessionid={signed_in(persona).cookies['sessionid'].value}".encode()


def _communicator(cookie: bytes | None, origin: bytes = b"http://testserver"):
    headers = [(b"host", b"testserver"), (b"origin", origin)]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/instances/", headers=headers)


@pytest.fixture
def _close_connections():
    yield
    run(sync_to_async(connections.close_all)())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_connections")
def test_the_websocket_pushes_the_new_row_to_the_projects_dashboards_only(member, reader, other):
    vm = make_server(member, "vm1", vm_state="building", task_state="spawning")
    cookies = {"member": _session_cookie(member), "reader": _session_cookie(reader),
               "other": _session_cookie(other)}

    async def scenario():
        socks = {name: _communicator(cookie) for name, cookie in cookies.items()}
        for sock in socks.values():
            connected, _ = await sock.connect(timeout=5)
            assert connected
            assert (await sock.receive_json_from(timeout=5))["type"] == "hello"
        await sync_to_async(_spawned)(vm)
        pushed = await socks["member"].receive_json_from(timeout=5)
        read_only = await socks["reader"].receive_json_from(timeout=5)
        assert await socks["other"].receive_nothing(timeout=0.3)
        for sock in socks.values():
            await sock.disconnect()
        return pushed, read_only

    pushed, read_only = run(scenario())
    assert pushed["uuid"] == str(vm.uuid) and pushed["status"] == "ACTIVE"
    assert 'data-status="ACTIVE"' in pushed["badge"]
    assert f"/instances/{vm.uuid}/do/stop" in pushed["row"]  # rendered for a member…
    assert read_only["status"] == "ACTIVE" and "/do/" not in read_only["row"]  # …and a reader


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_connections")
def test_the_websocket_refuses_strangers_and_other_sites(member):
    cookie = _session_cookie(member)

    async def connects(sock) -> bool:
        connected, _ = await sock.connect(timeout=5)
        if connected:
            await sock.disconnect()
        return connected

    assert not run(connects(_communicator(None)))
    assert not run(connects(_communicator(cookie, origin=b"http://evil.example")))
    assert run(connects(_communicator(cookie)))


@pytest.mark.django_db
def test_the_row_endpoint_renders_one_row_for_a_page_to_swap(member, other):
    vm = make_server(member, "vm1")
    response = signed_in(member).get(f"/instances/{vm.uuid}/row")
    assert response.content.decode().startswith(f'<tr data-instance="{vm.uuid}"')
    assert signed_in(other).get(f"/instances/{vm.uuid}/row").status_code == 404
