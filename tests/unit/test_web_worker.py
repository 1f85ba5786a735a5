"""The web process's websocket protocol (cloud/web_uvicorn.py): binary messages leave through its own
frame writer rather than uvicorn's, so a real uvicorn server runs it here and a websocket client
checks every frame length form (7-bit, 16-bit and 64-bit), byte for byte, beside text and close.
Its HTTP keep-alive outlasts a client that polls every 2 s."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from websockets.sync.client import connect

from cloud.web_uvicorn import WebSocketProtocol

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000]


async def echo_app(scope, receive, send) -> None:
    """Echoes each message in kind; 'bye' as text closes with 4000."""
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000})
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(echo_app, ws=WebSocketProtocol, lifespan="off", log_level="warning",
                            ws_max_size=1024 * 1024, ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_binary_messages_of_every_length_form_arrive_intact(address):
    payloads = [os.urandom(size) for size in SIZES]
    with connect(f"ws://{address}/", max_size=None, compression=None) as ws:
        for payload in payloads:
            ws.send(payload)
            assert ws.recv(timeout=5) == payload


def test_text_and_close_still_take_uvicorns_path(address):
    with connect(f"ws://{address}/", compression=None) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send("bye")
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=5)
    assert ws.close_code == 4000, closed.value


async def hello_app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def worker_config(**settings):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from cloud.web_uvicorn import Worker

    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return Worker(0, os.getpid(), [], None, 30, cfg, Logger(cfg)).config


def test_idle_keep_alive_connection_outlives_a_two_second_poll():
    """A client polling every 2 s (novaclient waiting for a delete, under Rally) reuses its
    connection: with gunicorn's default keep-alive of 2 s the server closed it at that moment and
    the client read a connection reset. The web worker keeps idle connections open longer."""
    keep_alive = worker_config().timeout_keep_alive
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(hello_app, lifespan="off", log_level="warning",
                                           timeout_keep_alive=keep_alive))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    def get(client: socket.socket) -> bytes:
        client.sendall(b"GET / HTTP/1.1\r\nHost: kumo\r\n\r\n")
        answer = b""
        while not answer.endswith(b"\r\n\r\nok"):
            chunk = client.recv(4096)  # a reset raises; a close returns b""
            if not chunk:
                break
            answer += chunk
        return answer

    try:
        with socket.create_connection(sock.getsockname(), timeout=5) as client:
            assert get(client).startswith(b"HTTP/1.1 200")
            time.sleep(2.5)
            assert get(client).startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)


def test_keep_alive_given_to_gunicorn_is_kept():
    assert worker_config(keepalive=5).timeout_keep_alive == 5
