"""The web process's console websocket (consoles/consumer.py), driven through the ASGI application
the web server runs (cloud/asgi.py) with Channels' WebsocketCommunicator. A FakeVnc listener plays
each guest's VNC server: every refusal below is checked to have reached no VNC port at all."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.utils import timezone

from cloud.asgi import application
from cloud.compute.models import ConsoleToken, Instance
from cloud.compute.servers import complete_delete

from .fakes import RFB_BANNER, FakeVnc, mint, server_with_console

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://testserver"


def communicator(path: str, origin: bytes | None = ORIGIN, host: bytes = b"testserver"):
    headers = [(b"host", host)]
    if origin is not None:
        headers.append((b"origin", origin))
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=["binary"])


async def refused(path: str, **kwargs) -> bool:
    comm = communicator(path, **kwargs)
    connected, _ = await comm.connect(timeout=5)
    if connected:
        await comm.disconnect()
    return not connected


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _close_consumer_connections():
    """The consumer's database calls run on asgiref's one sync thread, whose connection would
    otherwise outlive the test and keep the test database from being dropped."""
    yield
    run(sync_to_async(connections.close_all)())


@pytest.fixture
def server(member, vnc):
    return server_with_console(member, port=vnc.port)


# --- refused before any byte reaches a VNC port ---------------------------------------------------


def test_a_console_without_a_token_is_refused(server, vnc):
    assert run(refused("/console/ws"))
    assert not vnc.touched()


def test_an_unknown_token_is_refused(server, vnc):
    assert run(refused("/console/ws?token=" + "A" * 43))
    assert not vnc.touched()


def test_an_expired_token_is_refused(member, server, vnc):
    token = mint(member, server)
    ConsoleToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert run(refused(f"/console/ws?token={token}"))
    assert not vnc.touched()


def test_a_used_token_is_refused_the_second_time(member, server, vnc):
    token = mint(member, server)

    async def twice():
        comm = communicator(f"/console/ws?token={token}")
        assert (await comm.connect(timeout=5))[0]
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        again = await refused(f"/console/ws?token={token}")
        await comm.disconnect()
        return again

    assert run(twice())
    assert vnc.connections == 1


def test_a_token_for_one_instance_never_reaches_another_instances_port(member, server, vnc, other_vnc):
    """The token decides the target: whatever the client adds to the URL, X's token reaches X."""
    server_with_console(member, port=other_vnc.port, name="vm-y")
    token = mint(member, server)
    path = (f"/console/ws?token={token}&port={other_vnc.port}&host=127.0.0.1"
            f"&target=127.0.0.1:{other_vnc.port}")

    async def scenario():
        comm = communicator(path)
        assert (await comm.connect(timeout=5))[0]
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        await comm.disconnect()

    run(scenario())
    assert vnc.connections == 1
    assert not other_vnc.touched()


def test_a_token_of_a_deleted_instance_is_refused(member, server, vnc):
    token = mint(member, server)
    complete_delete(str(server.uuid))
    assert run(refused(f"/console/ws?token={token}"))
    assert not vnc.touched()


@pytest.mark.parametrize("origin", [b"http://evil.example", b"http://testserver.evil.example",
                                    b"https://testserver", b"http://testserver:8080", b"null"])
def test_a_foreign_origin_is_refused_and_the_token_survives_it(member, server, vnc, origin):
    token = mint(member, server)
    assert run(refused(f"/console/ws?token={token}", origin=origin))
    assert not vnc.touched()
    assert not ConsoleToken.objects.filter(used_at__isnull=False).exists()


def test_a_configured_origin_may_open_a_console(member, server, vnc, settings):
    settings.KUMO_CONSOLE_ALLOWED_ORIGINS = ["https://portal.example"]
    token = mint(member, server)

    async def scenario():
        comm = communicator(f"/console/ws?token={token}", origin=b"https://portal.example")
        assert (await comm.connect(timeout=5))[0]
        # The guest's banner: the fake guest has counted the connection by then (its accept runs
        # on a thread of its own, which the count read just after the disconnect could outrun).
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        await comm.disconnect()

    run(scenario())
    assert vnc.connections == 1


def test_a_stopped_guest_is_refused_without_connecting(member, server, vnc):
    token = mint(member, server)
    Instance.objects.filter(pk=server.pk).update(vm_state="stopped", console_port=None)
    assert run(refused(f"/console/ws?token={token}"))
    assert not vnc.touched()


# --- the relay ----------------------------------------------------------------------------------


def test_frames_are_relayed_both_ways_byte_for_byte(member, server, vnc):
    token = mint(member, server)
    payload = os.urandom(1024 * 1024)

    async def scenario():
        comm = communicator(f"/console/ws?token={token}")
        connected, subprotocol = await comm.connect(timeout=5)
        assert (connected, subprotocol) == (True, "binary")
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        for start in range(0, len(payload), 100_000):
            await comm.send_to(bytes_data=payload[start:start + 100_000])
        echoed = bytearray()
        while len(echoed) < len(payload):
            echoed.extend(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return bytes(echoed)

    assert run(scenario()) == payload
    assert bytes(vnc.received) == payload


def test_the_console_url_itself_also_upgrades_to_the_relay(member, server, vnc):
    token = mint(member, server)

    async def scenario():
        comm = communicator(f"/console/?token={token}")
        assert (await comm.connect(timeout=5))[0]
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        await comm.disconnect()

    run(scenario())


def test_an_open_session_is_closed_when_its_instance_is_deleted(member, server, vnc, settings):
    settings.KUMO_CONSOLE_RECHECK_INTERVAL = 0.1
    token = mint(member, server)

    async def scenario():
        comm = communicator(f"/console/ws?token={token}")
        assert (await comm.connect(timeout=5))[0]
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        await sync_to_async(complete_delete)(str(server.uuid))
        closed = await comm.receive_output(timeout=5)
        await comm.wait(timeout=5)
        return closed

    assert run(scenario()) == {"type": "websocket.close", "code": 4410}


def test_the_session_ends_when_the_guest_closes_its_display(member, vnc):
    guest = FakeVnc(banner=b"")
    try:
        instance = server_with_console(member, port=guest.port)
        token = mint(member, instance)

        async def scenario():
            comm = communicator(f"/console/ws?token={token}")
            assert (await comm.connect(timeout=5))[0]
            await asyncio.sleep(0.2)
            guest.close()
            return await comm.receive_output(timeout=5)

        assert run(scenario())["type"] == "websocket.close"
    finally:
        guest.close()


def test_a_closed_browser_frees_the_session_place(member, server, vnc, settings):
    settings.KUMO_CONSOLE_MAX_SESSIONS = 1
    first, second = mint(member, server), mint(member, server)

    async def scenario():
        comm = communicator(f"/console/ws?token={first}")
        assert (await comm.connect(timeout=5))[0]
        busy = await refused(f"/console/ws?token={second}")
        await comm.disconnect()
        return busy

    assert run(scenario())
    assert ConsoleToken.objects.filter(closed_at__isnull=False).count() == 1

    async def again():
        comm = communicator(f"/console/ws?token={second}")
        connected, _ = await comm.connect(timeout=5)
        await comm.disconnect()
        return connected

    assert run(again())


def test_an_unreachable_vnc_port_refuses_the_console_and_frees_its_place(member):
    instance = server_with_console(member, port=1)  # nothing listens on port 1
    token = mint(member, instance)
    assert run(refused(f"/console/ws?token={token}"))
    assert ConsoleToken.objects.get().closed_at is not None


# --- a guest whose screen is a unix socket (a host in its own namespaces on this machine) -------


def test_a_guest_on_a_unix_socket_is_relayed_both_ways(member, socket_vnc, vnc):
    instance = server_with_console(member, port=None, name="elsewhere", host="compute-2",
                                   socket_path=socket_vnc.path)
    token = mint(member, instance)

    async def scenario():
        comm = communicator(f"/console/ws?token={token}")
        assert (await comm.connect(timeout=5))[0]
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        await comm.send_to(bytes_data=b"key press")
        echoed = await comm.receive_from(timeout=5)
        await comm.disconnect()
        return echoed

    assert run(scenario()) == b"key press"
    assert bytes(socket_vnc.received) == b"key press"
    assert not vnc.touched()


def test_a_socket_token_is_refused_once_the_guest_reports_another_socket(member, socket_vnc,
                                                                         tmp_path):
    """The guest moved or restarted: its screen is elsewhere, and the old link must not reach
    whatever listens on the old path now."""
    instance = server_with_console(member, port=None, host="compute-2",
                                   socket_path=socket_vnc.path)
    token = mint(member, instance)
    Instance.objects.filter(pk=instance.pk).update(console_socket=str(tmp_path / "other.sock"))
    assert run(refused(f"/console/ws?token={token}"))
    assert not socket_vnc.touched()


def test_a_socket_token_ends_its_session_when_the_guest_moves(member, socket_vnc, settings):
    settings.KUMO_CONSOLE_RECHECK_INTERVAL = 0.1
    instance = server_with_console(member, port=None, host="compute-2",
                                   socket_path=socket_vnc.path)
    token = mint(member, instance)

    async def scenario():
        comm = communicator(f"/console/ws?token={token}")
        assert (await comm.connect(timeout=5))[0]
        assert await comm.receive_from(timeout=5) == RFB_BANNER
        await sync_to_async(Instance.objects.filter(pk=instance.pk).update)(
            host="compute-3", console_socket="/elsewhere/vnc.sock")
        closed = await comm.receive_output(timeout=5)
        await comm.disconnect()
        return closed

    assert run(scenario()) == {"type": "websocket.close", "code": 4410}
