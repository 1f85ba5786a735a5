"""The web process's worker as it runs: uvicorn serving cloud.asgi:application. gunicorn's master
knows it as cloud.web_worker.Worker, which becomes this class in the forked worker only (the
master then carries none of uvicorn: cloud/web_worker.py).

Differences from uvicorn's stock worker, all about logs: uvicorn's access log is off (it prints
query strings, and console tokens travel in them; cloud/asgi.py writes the access log instead), and
uvicorn's own logger — which names each websocket's path and query when it opens and closes — passes
through consoles.redact. Its websocket protocol writes binary frames itself (WebSocketProtocol).
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn_worker import UvicornWorker
from websockets.protocol import State

from consoles.redact import RedactTokens

_FIN_BINARY = 0x82
KEEP_ALIVE_S = 75


def binary_frame_header(length: int) -> bytes:
    """RFC 6455 header of one whole, unmasked (server to client) binary frame."""
    if length < 126:
        return bytes((_FIN_BINARY, length))
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN_BINARY, 126, length)
    return struct.pack("!BBQ", _FIN_BINARY, 127, length)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol, except that a binary message goes out as its header and the
    caller's own bytes (one writev) instead of through websockets' frame serializer, which copies
    every payload twice. The console relay sends frames of up to 256 KiB (consoles/consumer.py),
    so those copies were a fifth of its CPU (bench/console_bench.py). Anything else — text,
    close, the handshake, a connection already closing, an extension such as permessage-deflate
    that changes frames — takes uvicorn's own path."""

    async def send(self, message: Any) -> None:
        data = message.get("bytes") if message["type"] == "websocket.send" else None
        if data is None or not self.handshake_complete or self.initial_response is not None:
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.close_sent or self.conn.extensions or self.conn.state is not State.OPEN:
            await super().send(message)  # its errors, unchanged
            return
        self.transport.writelines((binary_frame_header(len(data)), data))


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "ws": "cloud.web_uvicorn:WebSocketProtocol",
        "lifespan": "off",
        "access_log": False,
        # RFB frames are mostly compressed already (tight, zlib); deflating them again costs the
        # web process CPU for nothing. A console frame is at most consoles.consumer.MAX_FRAME.
        "ws_per_message_deflate": False,
        "ws_max_size": 1024 * 1024,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # gunicorn's default keep-alive (2 s) closes an idle connection just as clients that poll
        # every 2 s reuse it (novaclient under Rally waiting for a delete): they read a reset
        # instead of an answer. Idle connections stay open for KEEP_ALIVE_S unless --keep-alive
        # was given (Nova's eventlet API server keeps them up to client_socket_timeout, 900 s).
        if self.cfg.keepalive == self.cfg.settings["keepalive"].default:
            self.config.timeout_keep_alive = KEEP_ALIVE_S
        for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactTokens) for f in logger.filters):
                logger.addFilter(RedactTokens())
            for handler in logger.handlers:
                if not any(isinstance(f, RedactTokens) for f in handler.filters):
                    handler.addFilter(RedactTokens())
