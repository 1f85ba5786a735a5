"""The console websocket of the web process: a byte pump between a browser and a guest's VNC port.

Order matters, and is the point of this module: the Origin is checked first, then the token is
consumed (cloud/compute/consoles.py decides everything about it, including where to connect), and
only then is a connection opened (TCP to the host's VNC port, or the unix socket a host on this
machine reported) — so a refused handshake never sends a byte to any VNC server. The client cannot
name a target: host and port, or the socket's path, come from the token's row.

Once open, bytes go both ways with backpressure, and the session re-checks itself every
KUMO_CONSOLE_RECHECK_INTERVAL seconds: a deleted or moved instance ends it (code 4410).

This is a plain ASGI application rather than a Channels consumer, for speed (bench/console_bench.py):
a consumer hops to a thread for every message it receives (Channels closes stale database
connections before each handler) and starts a task per message, which made every keystroke's
round trip about 2.5× websockify's. Here each direction is one coroutine of its own, the database
is touched only to take the token, for the re-checks and to free the session's place, and the
guest's side is an asyncio protocol: whatever the guest sent while the last frame was going out
leaves as one frame (up to MAX_FRAME), so a busy screen costs few, large frames, and a quiet one
loses no latency waiting for more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from cloud.compute import consoles

from .origin import origin_allowed

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# The largest frame the relay sends: what the guest sent while the previous frame was going out, up
# to this. noVNC takes frames of any size; a bound keeps the browser's first byte of a big update
# from waiting on the whole of it.
MAX_FRAME = 256 * 1024
# Reading from the guest pauses while this much waits to be sent (TCP holds back the rest).
GUEST_HIGH_WATER = 1024 * 1024
CONNECT_TIMEOUT = 5.0

# Close codes the page can tell apart (4000-4999 are the application's own).
CLOSE_GUEST_CLOSED = 1000
CLOSE_SESSION_ENDED = 4410  # the instance was deleted or moved while the session was open


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_from_scope(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class GuestSide(asyncio.Protocol):
    """The VNC connection. Received bytes queue here until the relay takes them all at once;
    reading pauses above GUEST_HIGH_WATER, and writes to the guest can be awaited until its
    socket takes them (drained())."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._reading_paused = False
        self._closed = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued >= GUEST_HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        return False  # the guest is done: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake_reader()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # the writer sees the closed transport and stops

    def pause_writing(self) -> None:
        if self._drain_waiter is None:
            self._drain_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- the relay's side ---------------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter, self._data_waiter = self._data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> bytes:
        """Everything queued, up to MAX_FRAME, as soon as there is any; b"" once the guest closed
        and everything it sent was taken."""
        while not self._chunks:
            if self._closed:
                return b""
            self._data_waiter = asyncio.get_running_loop().create_future()
            await self._data_waiter
        if self._queued <= MAX_FRAME:
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks.clear()
        else:
            # Whole chunks while they fit: a chunk is bytes the guest's socket gave at once (up to
            # 256 KiB), and sending it as it is copies nothing. Only one larger than a frame is cut.
            taken, size = 0, 0
            for chunk in self._chunks:
                if size + len(chunk) > MAX_FRAME:
                    break
                taken, size = taken + 1, size + len(chunk)
            if taken == 0:
                head = self._chunks[0]
                self._chunks[0] = head[MAX_FRAME:]
                data = head[:MAX_FRAME]
            elif taken == 1:
                data = self._chunks.popleft()
            else:
                data = b"".join(self._chunks.popleft() for _ in range(taken))
        self._queued -= len(data)
        if self._reading_paused and self._queued < GUEST_HIGH_WATER // 2 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def write(self, data: bytes) -> bool:
        """Hands data to the guest's socket; False once that connection is gone."""
        if self._closed or self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    async def drained(self) -> None:
        if self._drain_waiter is not None:
            await self._drain_waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open_guest(target: consoles.ConsoleTarget) -> GuestSide:
    loop = asyncio.get_running_loop()
    if target.socket:
        opening = loop.create_unix_connection(GuestSide, target.socket)
    else:
        opening = loop.create_connection(GuestSide, target.host_address, target.port)
    _, guest = await asyncio.wait_for(opening, CONNECT_TIMEOUT)
    return guest


class _SessionEnd:
    """Gives the session's place back (cloud/compute/consoles.py), once."""

    def __init__(self, target: consoles.ConsoleTarget) -> None:
        self.target: consoles.ConsoleTarget | None = target

    async def __call__(self) -> None:
        target, self.target = self.target, None
        if target is not None:
            await database_sync_to_async(consoles.close_session)(target)


class ConsoleRelay:
    """One console session per websocket connection (an ASGI application for websocket scopes)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        secure = scope.get("scheme") == "wss"
        origin = _header(scope, b"origin")
        if not origin_allowed(origin, _header(scope, b"host"), secure=secure):
            log.warning("console refused: origin %s is not allowed", origin)
            await send({"type": "websocket.close"})  # before accept: the handshake is answered 403
            return
        try:
            target = await database_sync_to_async(consoles.consume_token)(token_from_scope(scope))
        except consoles.ConsoleRefused as refused:
            log.info("console refused: %s", refused.reason)
            await send({"type": "websocket.close"})
            return
        ended = _SessionEnd(target)
        try:
            await self._session(scope, receive, send, target, ended)
        finally:
            await asyncio.shield(ended())  # however it ended, even cancelled

    async def _session(self, scope: Scope, receive: Receive, send: Send,
                       target: consoles.ConsoleTarget, ended: _SessionEnd) -> None:
        try:
            guest = await _open_guest(target)
        except (TimeoutError, OSError) as exc:
            log.warning("console of %s: cannot reach %s: %s", target.instance_uuid, target.where,
                        exc)
            await ended()  # before the answer: a client that tries again finds the place free
            await send({"type": "websocket.close"})
            return
        log.info("console of %s open (%s)", target.instance_uuid, target.where)
        try:
            offered = scope.get("subprotocols") or []
            await send({"type": "websocket.accept",
                        "subprotocol": "binary" if "binary" in offered else None})
            from_guest = asyncio.create_task(self._from_guest(guest, send))
            from_client = asyncio.create_task(self._from_client(receive, guest))
            recheck = asyncio.create_task(self._recheck(target))
            tasks = {from_guest, from_client, recheck}
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                failure = task.exception()
                # A peer going away mid-send ends the session; anything else is a bug to see.
                if failure is not None and not isinstance(failure, (ConnectionError, OSError)):
                    log.error("console of %s: relay failed", target.instance_uuid,
                              exc_info=failure)
            if from_client in done and from_client.exception() is None and from_client.result():
                return  # the browser went away: nobody to say goodbye to
            code = CLOSE_SESSION_ENDED if recheck in done else CLOSE_GUEST_CLOSED
            await ended()
            with contextlib.suppress(Exception):  # the client may be gone by now
                await send({"type": "websocket.close", "code": code})
        finally:
            guest.close()

    @staticmethod
    async def _from_guest(guest: GuestSide, send: Send) -> None:
        """Guest to browser until the guest closes (everything it sent is delivered first)."""
        while data := await guest.read():
            await send({"type": "websocket.send", "bytes": data})

    @staticmethod
    async def _from_client(receive: Receive, guest: GuestSide) -> bool:
        """Browser to guest. True when the browser disconnected, False when the guest's side
        closed under it."""
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return True
            # RFB is binary; noVNC sends nothing else. A text frame is dropped, not guessed at.
            data = message.get("bytes") if kind == "websocket.receive" else None
            if not data:
                continue
            if not guest.write(data):
                return False
            await guest.drained()

    @staticmethod
    async def _recheck(target: consoles.ConsoleTarget) -> None:
        """Returns when the instance was deleted or moved."""
        interval = float(settings.KUMO_CONSOLE_RECHECK_INTERVAL)
        while True:
            await asyncio.sleep(interval)
            if not await database_sync_to_async(consoles.session_alive)(target):
                log.info("console of %s ends: the instance was deleted or moved",
                         target.instance_uuid)
                return
