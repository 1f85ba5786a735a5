"""How the web process's bridge (cloud/asgi.py, StrictRequestBody) hands an upload's body to the
WSGI app: a chunked body that the client cuts short or leaves silent fails the read, instead of
ending as if it were complete (the integration test test_image_uploads.py shows it on the real
server; here each case on its own, including the timeout, which takes minutes there)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cloud.asgi import RequestBodyCutShort, StrictRequestBody

CHUNKED = [(b"transfer-encoding", b"chunked")]
WITH_LENGTH = [(b"content-length", b"10")]


def read_body(headers: list, messages: list[dict | None], timeout: float = 1) -> list[Any]:
    """What the app behind the bridge gets from each receive(): a message or the exception. None
    in `messages` is a client that sends nothing more."""
    got: list[Any] = []
    reads = len(messages)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        for _ in range(reads):
            try:
                got.append(await receive())
            except OSError as exc:
                got.append(exc)
                return

    async def receive() -> dict:
        message = messages.pop(0) if messages else None
        if message is None:
            await asyncio.Event().wait()  # silence
        assert message is not None
        return message

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "headers": headers}
    bridge = StrictRequestBody(app, idle_timeout=timeout)(scope, receive, send)
    # A bridge that waits for a silent client forever fails the test instead of hanging it.
    asyncio.run(asyncio.wait_for(bridge, 5))
    return got


def body(data: bytes, more: bool) -> dict:
    return {"type": "http.request", "body": data, "more_body": more}


@pytest.mark.parametrize("headers", [CHUNKED, WITH_LENGTH])
def test_a_body_that_arrives_passes_unchanged(headers):
    sent = [body(b"abc", True), body(b"def", False)]
    assert read_body(headers, list(sent)) == sent


def test_a_chunked_body_whose_client_disconnects_fails_the_read():
    got = read_body(CHUNKED, [body(b"abc", True), {"type": "http.disconnect"}])
    assert got[0] == body(b"abc", True)
    assert isinstance(got[1], RequestBodyCutShort)
    assert isinstance(got[1], OSError)  # what the upload turns into a 400


def test_a_chunked_body_that_goes_silent_fails_the_read():
    got = read_body(CHUNKED, [body(b"abc", True), None], timeout=0.05)
    assert isinstance(got[1], RequestBodyCutShort)
    assert "no request body data" in str(got[1])


def test_a_body_with_a_length_that_goes_silent_ends_short():
    # Its reader compares what came with the Content-Length and refuses it (400).
    got = read_body(WITH_LENGTH, [body(b"abc", True), None], timeout=0.05)
    assert got[1] == body(b"", False)


def test_a_body_with_a_length_keeps_the_disconnect_message():
    got = read_body(WITH_LENGTH, [{"type": "http.disconnect"}])
    assert got == [{"type": "http.disconnect"}]
