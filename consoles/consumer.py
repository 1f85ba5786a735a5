"""The console websocket of the web process: a byte pump between a browser and a guest's VNC port.

Order matters, and is the point of this module: the Origin is checked first, then the token is
consumed (cloud/compute/consoles.py decides everything about it, including where to connect), and
only then is a connection opened (TCP to the host's VNC port, or the unix socket a host on this
machine reported) — so a refused handshake never sends a byte to any VNC server. The client cannot
name a target: host and port, or the socket's path, come from the token's row.

Once open, frames go both ways with backpressure (the pump awaits each websocket send, and each
write to the guest is drained before the next frame is taken from the client), and the session
re-checks itself every KUMO_CONSOLE_RECHECK_INTERVAL seconds: a deleted or moved instance ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from cloud.compute import consoles

from .origin import origin_allowed

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0

# Close codes the page can tell apart (4000-4999 are the application's own).
CLOSE_GUEST_CLOSED = 1000
CLOSE_SESSION_ENDED = 4410  # the instance was deleted or moved while the session was open


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_from_scope(scope: dict) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class ConsoleConsumer(AsyncWebsocketConsumer):
    # A relay needs no channel of its own on the layer: it re-checks the database instead, so an
    # open console costs the layer's Redis nothing.
    channel_layer_alias = None
    target: consoles.ConsoleTarget | None = None

    async def connect(self) -> None:
        self.target = None
        self._tasks: list[asyncio.Task] = []
        self._writer: asyncio.StreamWriter | None = None
        self._send_lock = asyncio.Lock()
        self._finished = False

        secure = self.scope.get("scheme") == "wss"
        if not origin_allowed(_header(self.scope, b"origin"), _header(self.scope, b"host"),
                              secure=secure):
            log.warning("console refused: origin %s is not allowed", _header(self.scope, b"origin"))
            await self.close()  # before accept: the handshake is answered 403
            return
        try:
            target = await database_sync_to_async(consoles.consume_token)(
                token_from_scope(self.scope)
            )
        except consoles.ConsoleRefused as refused:
            log.info("console refused: %s", refused.reason)
            await self.close()
            return
        self.target = target
        try:
            if target.socket:
                opening = asyncio.open_unix_connection(target.socket, limit=CHUNK)
            else:
                opening = asyncio.open_connection(target.host_address, target.port, limit=CHUNK)
            reader, self._writer = await asyncio.wait_for(opening, CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            log.warning("console of %s: cannot reach %s: %s", target.instance_uuid, target.where,
                        exc)
            await self._end_session()
            await self.close()
            return
        log.info("console of %s open (%s)", target.instance_uuid, target.where)
        offered = self.scope.get("subprotocols") or []
        await self.accept("binary" if "binary" in offered else None)
        self._tasks = [
            asyncio.create_task(self._pump_from_guest(reader)),
            asyncio.create_task(self._recheck()),
        ]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # RFB is binary; noVNC sends nothing else. A text frame is dropped rather than guessed at.
        if bytes_data is None or self._writer is None:
            return
        self._writer.write(bytes_data)
        try:
            await self._writer.drain()
        except (ConnectionError, OSError):
            await self._finish(CLOSE_GUEST_CLOSED)

    async def disconnect(self, code: int) -> None:
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await self._close_guest()
        await self._end_session()

    async def _pump_from_guest(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                async with self._send_lock:
                    if self._finished:
                        return
                    await self.send(bytes_data=data)
        except (ConnectionError, OSError):
            pass
        await self._finish(CLOSE_GUEST_CLOSED)

    async def _recheck(self) -> None:
        interval = float(settings.KUMO_CONSOLE_RECHECK_INTERVAL)
        target = self.target
        if target is None:
            return  # only started once a token was consumed
        while True:
            await asyncio.sleep(interval)
            if not await database_sync_to_async(consoles.session_alive)(target):
                log.info("console of %s ends: the instance was deleted or moved",
                         target.instance_uuid)
                await self._finish(CLOSE_SESSION_ENDED)
                return

    async def _finish(self, code: int) -> None:
        async with self._send_lock:
            if self._finished:
                return
            self._finished = True
            await self.close(code)
        await self._close_guest()

    async def _close_guest(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _end_session(self) -> None:
        target, self.target = self.target, None
        if target is not None:
            await database_sync_to_async(consoles.close_session)(target)
