"""The request id in the agent's log lines, so that one grep follows a request from the API
through the scheduler and conductor into this host.

The agent keeps its own copy of this small mechanism because it must not import `cloud`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

NO_REQUEST = "-"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "compute_agent_request_id", default=NO_REQUEST
)

# The instance a task works on, for the JSON log lines (compute_agent/logformat.py).
instance_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "compute_agent_instance", default=""
)


@contextlib.contextmanager
def instance_context(instance_uuid: str) -> Iterator[None]:
    """Name `instance_uuid` in every log line emitted inside the block (in this thread)."""
    token = instance_var.set(instance_uuid)
    try:
        yield
    finally:
        instance_var.reset(token)


@contextlib.contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Tag every log line emitted inside the block (in this thread) with `request_id`."""
    token = request_id_var.set(request_id or NO_REQUEST)
    try:
        yield
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """For handlers configured by hand: stamps each record with the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


_installed = False


def install_record_factory() -> None:
    """Give every log record made in this process a `request_id` attribute.

    A filter only helps on the handlers it is attached to, and Celery builds its own handlers; a
    record factory reaches all of them, so a format using %(request_id)s can never fail.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
