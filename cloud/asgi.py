"""The web process's ASGI application: one origin for HTTP and websockets.

Websocket scopes go to Channels: the consoles' relay (consoles/routing.py) and the dashboard's live
status (cloud/dashboard/routing.py). HTTP goes to the same WSGI application the
threaded gunicorn workers ran, inside a pool of KUMO_WEB_THREADS threads (a2wsgi), rather than to
Django's ASGI handler: that one runs every sync view and middleware on a single thread per process,
which served the API about 3.5x slower here (bench/web_bench.py measures both; docs/architecture.md
has the figures). Request and response bodies stream through bounded queues, so image uploads and
downloads do not sit in memory.

The access log is written here, without query strings (console tokens travel in them); the server
(cloud/web_uvicorn.py) has its own access log turned off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from django.core.asgi import get_asgi_application

from cloud import optional_imports

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
# Before the middleware imports DRF: without requests and docutils (cloud/optional_imports.py).
optional_imports.import_rest_framework()
# Sets Django up (apps, logging) before anything below imports models.
_django_asgi = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.core.wsgi import get_wsgi_application

from cloud.dashboard.routing import websocket_urlpatterns as dashboard_routes
from cloud.logcontext import request_id_var
from cloud.wsgi_bridge import BufferingWSGIMiddleware
from consoles.redact import RedactTokens
from consoles.routing import websocket_urlpatterns as console_routes

websocket_routes = console_routes + dashboard_routes

access_log = logging.getLogger("kumo.access")

# Whatever ASGI server runs this application (uvicorn directly, say, without cloud/web_worker.py),
# its own loggers name websocket paths with their query strings: redact them at the source.
for _name in ("uvicorn.error", "uvicorn.access", "daphne.server"):
    if not any(isinstance(f, RedactTokens) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(RedactTokens())


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return "-"


class AccessLog:
    """One line per HTTP request or websocket session: client, method, path (never the query
    string), status, bytes, milliseconds and the request id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        seen: dict[str, Any] = {"status": "-", "bytes": 0, "request_id": "-"}

        async def logged_send(message: dict) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                seen["status"] = message["status"]
                seen["request_id"] = _header(message.get("headers", []), b"x-openstack-request-id")
            elif kind == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            elif kind == "websocket.accept":
                seen["status"] = 101
            elif kind == "websocket.close" and seen["status"] == "-":
                seen["status"] = 403  # closed before accept: the handshake was refused
            elif kind == "websocket.send":
                seen["bytes"] += len(message.get("bytes") or b"") + len(message.get("text") or "")
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            client = scope.get("client") or ("-", 0)
            method = scope.get("method", "WEBSOCKET")
            # The line names its request in the request_id field too (KUMO_LOG_FORMAT=json).
            token = request_id_var.set(seen["request_id"])
            try:
                access_log.info(
                    '%s "%s %s HTTP/%s" %s %s %dms %s', client[0], method, scope.get("path", ""),
                    scope.get("http_version", "1.1"), seen["status"], seen["bytes"],
                    (time.monotonic() - started) * 1000, seen["request_id"],
                )
            finally:
                request_id_var.reset(token)


class RequestBodyCutShort(ConnectionError):
    """The client went away, or went silent, before the end of a chunked request body."""


class StrictRequestBody:
    """a2wsgi's wsgi.input ends quietly when the client disconnects: it reads `http.disconnect` as
    the end of the body. A body with a Content-Length is checked against it by whoever reads it,
    but a chunked one (an image upload from python-glanceclient, Tempest, any streaming client)
    has no length, so half an image would be stored as a whole one. For a chunked body the read
    raises instead (an OSError, in the WSGI thread reading it).

    It does the same when the client sends nothing for KUMO_REQUEST_BODY_TIMEOUT seconds (default
    300): uvicorn has no read timeout of its own, so a client whose machine vanished mid-upload
    would hold its upload, and a thread, forever. A body with a Content-Length just ends there,
    short of its length, which its reader already refuses with a 400. Only reads of the request
    body wait on `receive`, so nothing else changes."""

    def __init__(self, app: Any, idle_timeout: float) -> None:
        self.app = app
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = any(
            name.lower() == b"transfer-encoding" and b"chunked" in value.lower()
            for name, value in scope.get("headers", [])
        )

        async def strict_receive() -> dict:
            try:
                message = await asyncio.wait_for(receive(), self.idle_timeout)
            except TimeoutError:
                if chunked:
                    raise RequestBodyCutShort(
                        f"no request body data for {self.idle_timeout:g} seconds"
                    ) from None
                return {"type": "http.request", "body": b"", "more_body": False}
            if message["type"] == "http.disconnect" and chunked:
                raise RequestBodyCutShort("the client disconnected before the end of the body")
            return message

        await self.app(scope, strict_receive, send)


http_application = StrictRequestBody(
    BufferingWSGIMiddleware(get_wsgi_application(), workers=settings.KUMO_WEB_THREADS),
    idle_timeout=float(getattr(settings, "KUMO_REQUEST_BODY_TIMEOUT", 300)),
)

application = AccessLog(
    ProtocolTypeRouter({
        "http": http_application,
        "websocket": URLRouter(websocket_routes),
    })
)

# For bench/web_bench.py: Django's own ASGI handler, the alternative the front was measured against.
django_asgi_application = AccessLog(
    ProtocolTypeRouter({"http": _django_asgi, "websocket": URLRouter(websocket_routes)})
)
