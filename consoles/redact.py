"""Keep console tokens out of log lines.

The token is the only credential a console URL carries, and servers log request paths: uvicorn's
websocket lines and websockify's handler include the query string. Every log handler of the
processes that see console URLs gets this filter (cloud/settings.py LOGGING, cloud/web_uvicorn.py,
consoles/proxy.py). Nothing here imports Django: Celery workers load the same logging settings.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# token=… in a query string, a cookie or a quoted path; the value ends at a delimiter. A value
# already redacted is left alone: a record can pass a logger's filter and then a handler's.
_TOKEN_VALUE = re.compile(r"(token=)(?!\[redacted\])[^&\s'\";,)\]]+", re.IGNORECASE)


def redact(text: str) -> str:
    return _TOKEN_VALUE.sub(lambda m: m.group(1) + REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites a record whose message carries a token value; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string is the handler's problem
            return True
        if "token=" in message.lower():
            record.msg = redact(message)
            record.args = None
        return True
