"""The standalone proxy (`python -m consoles.proxy`), started as a subprocess on a free port: it
relays a guest's VNC like the web process's consumer and enforces the same token rules, from the
same token store. Its websocket client here is the `websockets` library, as a browser would be.

The proxy is another process, so it must reach the test database: these tests run on PostgreSQL
(as `make test` and CI do) and are skipped on the in-memory SQLite database of a quick local run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from cloud.compute.models import ConsoleToken
from cloud.compute.servers import complete_delete
from tests.stack import ROOT, free_port

from .fakes import RFB_BANNER, mint, server_with_console

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
        reason="the proxy subprocess needs a database it can reach: run on PostgreSQL",
    ),
]


@pytest.fixture
def proxy(tmp_path: Path):
    db = connection.settings_dict
    port = free_port()
    log = tmp_path / "proxy.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "KUMO_CONSOLE_RECHECK_INTERVAL": "0.2",
        "DJANGO_SECRET_KEY": "proxy-test",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consoles.proxy", "--host", "127.0.0.1", "--port", str(port),
             "--verbose"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.1)
    yield f"127.0.0.1:{port}", log
    proc.terminate()
    proc.wait(timeout=15)


def ws(address: str, path: str, origin: str | None = "default"):
    if origin == "default":
        origin = f"http://{address}"
    return connect(f"ws://{address}{path}", origin=origin, subprotocols=["binary"],
                   open_timeout=10, close_timeout=2)


def refused(address: str, path: str, **kwargs) -> bool:
    try:
        with ws(address, path, **kwargs):
            return False
    except InvalidStatus as exc:
        return exc.response.status_code == 403


@pytest.fixture
def server(member, vnc):
    return server_with_console(member, port=vnc.port, name="proxied")


def test_the_proxy_relays_a_guest_both_ways(proxy, member, server, vnc):
    address, log = proxy
    token = mint(member, server)
    payload = os.urandom(300_000)
    with ws(address, f"/console/ws?token={token}") as conn:
        assert conn.recv(timeout=5) == RFB_BANNER
        conn.send(payload)
        echoed = b""
        while len(echoed) < len(payload):
            echoed += conn.recv(timeout=5)
    assert echoed == payload
    assert bytes(vnc.received) == payload
    assert ConsoleToken.objects.get().closed_at is not None or _eventually_closed()
    assert token not in log.read_text()


def _eventually_closed() -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if ConsoleToken.objects.filter(closed_at__isnull=False).exists():
            return True
        time.sleep(0.1)
    return False


def test_the_proxy_refuses_what_the_web_process_refuses(proxy, member, server, vnc, other_vnc):
    address, log = proxy
    server_with_console(member, port=other_vnc.port, name="other")
    expired, used, foreign, fresh = (mint(member, server) for _ in range(4))
    ConsoleToken.objects.filter(token_hash__in=[_hash(expired)]).update(
        expires_at=timezone.now() - timedelta(seconds=1))

    assert refused(address, "/console/ws")
    assert refused(address, "/console/ws?token=" + "B" * 43)
    assert refused(address, f"/console/ws?token={expired}")
    assert refused(address, f"/console/ws?token={foreign}", origin="http://evil.example")
    assert not vnc.touched()

    with ws(address, f"/console/ws?token={used}&port={other_vnc.port}") as conn:
        assert conn.recv(timeout=5) == RFB_BANNER
    assert refused(address, f"/console/ws?token={used}")
    assert vnc.connections == 1
    assert not other_vnc.touched()  # the token, not the URL, chose the target

    complete_delete(str(server.uuid))
    assert refused(address, f"/console/ws?token={fresh}")
    assert vnc.connections == 1
    text = log.read_text()
    assert all(t not in text for t in (expired, used, foreign, fresh))


def test_the_proxy_ends_a_session_when_its_instance_is_deleted(proxy, member, server, vnc):
    address, _ = proxy
    token = mint(member, server)
    with ws(address, f"/console/ws?token={token}") as conn:
        assert conn.recv(timeout=5) == RFB_BANNER
        complete_delete(str(server.uuid))
        with pytest.raises((ConnectionClosed, TimeoutError)):
            while True:
                conn.recv(timeout=5)


def test_the_proxy_serves_the_same_console_page_and_novnc(proxy, member, server):
    address, _ = proxy
    token = mint(member, server)
    with urllib.request.urlopen(f"http://{address}/console/?token={token}", timeout=10) as page:
        assert page.status == 200
        assert page.headers["Cache-Control"] == "no-store"
        assert "proxied" in page.read().decode()
    with urllib.request.urlopen(f"http://{address}/console/novnc/core/rfb.js", timeout=10) as js:
        assert js.headers["Content-Type"].startswith("text/javascript")
    for path in ("/console/novnc/package.json", "/etc/passwd", "/"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://{address}{path}", timeout=10)
        assert missing.value.code == 404
    assert ConsoleToken.objects.get().used_at is None  # looking is not connecting


def _hash(token: str) -> str:
    from cloud.compute.consoles import hash_token

    return hash_token(token)


def test_the_proxy_relays_a_guest_on_a_unix_socket(proxy, member, socket_vnc):
    address, _log = proxy
    instance = server_with_console(member, port=None, name="elsewhere", host="compute-2",
                                   socket_path=socket_vnc.path)
    token = mint(member, instance)
    with ws(address, f"/console/ws?token={token}") as conn:
        assert conn.recv(timeout=5) == RFB_BANNER
        conn.send(b"over the socket")
        assert conn.recv(timeout=5) == b"over the socket"
    assert bytes(socket_vnc.received) == b"over the socket"
