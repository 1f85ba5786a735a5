"""KUMO_LOG_FORMAT=json: one JSON object per log line, for a log shipper to index by request,
instance, host or trace rather than grep. The fields: time (UTC, ISO 8601), level, logger,
message, request_id, instance, host, trace_id and span_id (when
tracing is on and a span is open), and exc_info (a traceback, when there is one).

The compute agent has its own copy (compute_agent/logformat.py): it never imports `cloud`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from cloud import tracing
from cloud.logcontext import instance_var, request_id_var

FORMAT_ENV = "KUMO_LOG_FORMAT"


def json_wanted() -> bool:
    return os.environ.get(FORMAT_ENV, "").strip().lower() == "json"


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: Any, host: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host = host or socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "instance": instance_var.get(),
            "host": self.host,
        }
        ids = tracing.current_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
