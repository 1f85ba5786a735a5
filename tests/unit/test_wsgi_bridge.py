"""The web process's bridge to the WSGI app (cloud/wsgi_bridge.py): an in-memory response comes back
as the thread's result (no hop per message from the WSGI thread to the event loop), a streaming one
still goes out chunk by chunk while the app produces it, and the app's iterable is closed both ways."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from cloud.wsgi_bridge import BufferingResponder, BufferingWSGIMiddleware


class InMemory(list):
    """What Django's HttpResponse is to the bridge: an iterable of its body, not streaming."""

    streaming = False
    closed = False

    def close(self) -> None:
        self.closed = True


def serve(app: Any, on_send: Any = None) -> tuple[list[dict], int]:
    """The messages the bridge sends for one GET, and how many the WSGI thread handed over itself."""
    hops = 0
    original = BufferingResponder.send

    def counted(self: BufferingResponder, message: Any) -> None:
        nonlocal hops
        hops += 1
        original(self, message)

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)
        if on_send:
            on_send(message)

    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": [],
             "http_version": "1.1"}
    BufferingResponder.send = counted  # type: ignore[method-assign,assignment]
    try:
        asyncio.run(BufferingWSGIMiddleware(app, workers=2)(scope, receive, send))
    finally:
        BufferingResponder.send = original  # type: ignore[method-assign]
    return sent, hops


def test_an_in_memory_response_is_sent_whole_without_a_hop_per_message():
    body = InMemory([b"hello, ", b"world"])

    def app(environ: dict, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Openstack-Request-Id", "req-1")])
        return body

    sent, hops = serve(app)
    assert sent == [
        {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"), (b"x-openstack-request-id", b"req-1")]},
        {"type": "http.response.body", "body": b"hello, world"},
    ]
    assert hops == 0
    assert body.closed


def test_a_streaming_response_goes_out_while_the_app_produces_it():
    first_sent = threading.Event()
    closed = threading.Event()

    class Stream:
        def __iter__(self) -> Any:
            yield b"first"
            # The loop sent the first chunk before the app makes the second: it streams.
            assert first_sent.wait(5)
            yield b"second"

        def close(self) -> None:
            closed.set()

    def app(environ: dict, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Stream()

    def on_send(message: dict) -> None:
        if message.get("body") == b"first":
            first_sent.set()

    sent, hops = serve(app, on_send)
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 3
    assert [m.get("body") for m in sent[1:]] == [b"first", b"second", b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, False]
    assert closed.is_set()
    assert hops == 4  # start, two chunks, end: each from the WSGI thread, as a2wsgi does


def test_a_plain_wsgi_list_still_streams_through_the_queue():
    def app(environ: dict, start_response: Any) -> Any:
        start_response("404 Not Found", [])
        return [b"gone"]

    sent, hops = serve(app)
    assert sent[0] == {"type": "http.response.start", "status": 404, "headers": []}
    assert [m.get("body") for m in sent[1:]] == [b"gone", b""]
    assert hops == 3  # start, chunk, end: a2wsgi's way


def test_a_django_request_through_the_web_application():
    from cloud.asgi import application

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/compute/v2.1/servers", "raw_path": b"",
             "query_string": b"", "headers": [(b"host", b"localhost")], "http_version": "1.1",
             "scheme": "http", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(application(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 401
    assert any(name == b"x-openstack-request-id" for name, _ in sent[0]["headers"])
    assert len(sent) == 2 and sent[1]["body"] and not sent[1].get("more_body")
