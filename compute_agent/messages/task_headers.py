"""What a task message says about its own timing, read the same way by the control plane's workers
(cloud/metrics/task_timing.py) and the agents (compute_agent/task_timing.py)."""

from __future__ import annotations

from typing import Any

__all__ = ["PUBLISHED_AT_HEADER", "published_at", "queue_of"]

# The wall-clock time a control-plane process published a task at (epoch seconds), stamped in
# the message's headers so that whoever runs it can count how long it waited in its queue.
PUBLISHED_AT_HEADER = "kumo_published_at"


def published_at(task: Any) -> float | None:
    """When the running Celery `task` was published, or None when unstamped or unreadable."""
    value = getattr(task.request, PUBLISHED_AT_HEADER, None)
    if value is None:
        value = (getattr(task.request, "headers", None) or {}).get(PUBLISHED_AT_HEADER)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def queue_of(task: Any) -> str:
    """The queue (routing key) the running Celery `task` came from."""
    delivery = getattr(task.request, "delivery_info", None) or {}
    return str(delivery.get("routing_key") or "unknown")
