"""Websocket routes of the dashboard, for the web process's ASGI application to include:

    from cloud.dashboard.routing import websocket_urlpatterns

The consumer authenticates by the session cookie, so a page on another site must not be able to
open it with the user's cookies: the handshake's Origin has to be the dashboard's own (the same
rule as the console websocket, consoles/origin.py).
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from django.urls import path

from consoles.origin import origin_allowed

from .consumers import HostMovesConsumer, InstanceStatusConsumer
from .guest_charts import GuestStatsConsumer


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class SameOrigin:
    """Refuse a websocket handshake whose Origin is not the site it was sent to."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        secure = scope.get("scheme") in ("https", "wss")
        if not origin_allowed(_header(scope, b"origin"), _header(scope, b"host"), secure=secure):
            await receive()  # the handshake's websocket.connect; closing now answers it with 403
            await send({"type": "websocket.close", "code": 4403})
            return
        await self.app(scope, receive, send)


websocket_urlpatterns = [
    path("ws/instances/", SameOrigin(AuthMiddlewareStack(InstanceStatusConsumer.as_asgi()))),
    path("ws/host-moves/", SameOrigin(AuthMiddlewareStack(HostMovesConsumer.as_asgi()))),
    path("ws/guest-stats/", SameOrigin(AuthMiddlewareStack(GuestStatsConsumer.as_asgi()))),
]
