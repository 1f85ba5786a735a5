"""The request id (and the instance it is about) that follows one request from the API into
scheduler, conductor and agent logs."""

import contextlib
import contextvars
import logging
from collections.abc import Iterator

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
instance_var: contextvars.ContextVar[str] = contextvars.ContextVar("instance", default="")


@contextlib.contextmanager
def log_context(request_id: str, instance: str = "") -> Iterator[None]:
    """Tag every log line emitted inside the block (in this thread) with the request and the
    instance it works on."""
    request_token = request_id_var.set(request_id or "-")
    instance_token = instance_var.set(instance)
    try:
        yield
    finally:
        instance_var.reset(instance_token)
        request_id_var.reset(request_token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True
