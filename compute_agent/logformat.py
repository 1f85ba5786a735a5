"""KUMO_LOG_FORMAT=json for the agent: one JSON object per log line with time, level, logger,
message, request_id, instance, host (this compute host's name), and trace_id and span_id when
tracing is on. The same fields as the control plane's (cloud/logformat.py), which the agent may
not import."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from compute_agent import tracing
from compute_agent.logcontext import instance_var, request_id_var

FORMAT_ENV = "KUMO_LOG_FORMAT"


class JsonFormatter(logging.Formatter):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

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


def use_json_on(logger: logging.Logger, host: str) -> None:
    """Give every handler of `logger` the JSON format (Celery builds its handlers itself: this
    runs from its after_setup_logger signals)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter(host))
