"""The gunicorn worker class of the web process: uvicorn serving cloud.asgi:application.

    gunicorn cloud.asgi:application -k cloud.web_worker.Worker …

Differences from uvicorn's stock worker, all about logs: uvicorn's access log is off (it prints
query strings, and console tokens travel in them; cloud/asgi.py writes the access log instead), and
uvicorn's own logger — which names each websocket's path and query when it opens and closes — passes
through consoles.redact. No Django import here: gunicorn's master loads this module.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn_worker import UvicornWorker

from consoles.redact import RedactTokens


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "auto",
        "http": "auto",
        "ws": "auto",
        "lifespan": "off",
        "access_log": False,
        # RFB frames are mostly compressed already (tight, zlib); deflating them again costs the
        # web process CPU for nothing. A console frame is at most the consumer's 64 KiB chunk.
        "ws_per_message_deflate": False,
        "ws_max_size": 1024 * 1024,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactTokens) for f in logger.filters):
                logger.addFilter(RedactTokens())
            for handler in logger.handlers:
                if not any(isinstance(f, RedactTokens) for f in handler.filters):
                    handler.addFilter(RedactTokens())
