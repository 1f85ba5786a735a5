"""a2wsgi's bridge from ASGI to the WSGI app, with one hop back to the event loop fewer per message.

a2wsgi hands every message of a response — the start, each body chunk, the closing empty chunk —
from the WSGI thread to the event loop one at a time (`run_coroutine_threadsafe` and a wait for
its result): three cross-thread round trips for an ordinary API answer, each waking the loop and
making a task and a future. In one process they cost about as much CPU as the request itself
(a 401 through the bridge 1.16 ms, the same WSGI call on the calling thread 0.53 ms).

Here a Django response that is not streaming (its body is in memory already: every API answer)
comes back as the thread's result, start and body in one message each, sent by the loop once the
thread is done: no round trip at all. A streaming response (an image download, a console log's
stream) still goes through a2wsgi's bounded queue chunk by chunk, so it does not sit in memory;
the request body is read as a2wsgi reads it.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

from a2wsgi.wsgi import Body, WSGIMiddleware, WSGIResponder, build_environ


class BufferingResponder(WSGIResponder):
    """WSGIResponder that holds the response's start until it knows whether the body streams."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pending_start: dict | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # a2wsgi's, except for the messages the thread returns (see wsgi below).
        body = Body(self.loop, receive)
        environ = build_environ(scope, body)
        sender = None
        try:
            sender = self.loop.create_task(self.sender(send))
            context = contextvars.copy_context()
            func = functools.partial(context.run, self.wsgi)  # type: ignore[call-arg]
            whole = await self.loop.run_in_executor(
                self.executor, func, environ, self.start_response
            )
            await self.send_queue.put(None)
            await sender
            if self.exc_info is not None:
                raise self.exc_info[0].with_traceback(self.exc_info[1], self.exc_info[2])
            for message in whole or ():
                await send(message)
        finally:
            if sender and not sender.done():
                sender.cancel()

    def start_response(self, status: str, response_headers: list, exc_info: Any = None) -> Any:
        self.exc_info = exc_info
        if not self.response_started:
            self.response_started = True
            self.pending_start = {
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [
                    (name.strip().encode("latin1").lower(), value.strip().encode("latin1"))
                    for name, value in response_headers
                ],
            }
        return self.write

    def flush_start(self) -> None:
        if self.pending_start is not None:
            start, self.pending_start = self.pending_start, None
            self.send(start)  # type: ignore[arg-type]

    def write(self, chunk: bytes) -> None:  # WSGI's write callable
        self.flush_start()
        self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    def wsgi(self, environ: Any, start_response: Any) -> list[dict] | None:  # type: ignore[override]
        iterable = self.app(environ, start_response)
        try:
            # Django's HttpResponse (not streaming) holds its whole body already.
            if self.pending_start is not None and getattr(iterable, "streaming", None) is False:
                start, self.pending_start = self.pending_start, None
                return [start, {"type": "http.response.body", "body": b"".join(iterable)}]
            for chunk in iterable:
                self.write(chunk)
            self.flush_start()
            self.send({"type": "http.response.body", "body": b""})
            return None
        finally:
            getattr(iterable, "close", lambda: None)()


class BufferingWSGIMiddleware(WSGIMiddleware):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            responder = BufferingResponder(self.app, self.executor, self.send_queue_size)
            await responder(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

