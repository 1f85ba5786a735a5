"""Kumo's metrics: what any layer calls to count something, and the hook for scrape-time gauges.

Recording (hot paths; families in `families.py`):

    metrics.inc(families.CLAIMS, "instance")
    metrics.observe(families.SCHEDULER_DECISIONS, 0.004, "placed")

Nothing waits for Redis: each call adds to this process's buffer, which a thread sends to Redis
every KUMO_METRICS_FLUSH_INTERVAL seconds in one pipelined call (store.py). `metrics.batch()`
gathers every increment of a unit of work (an HTTP request, a Celery task) and hands them over
together at its end — one round trip if the interval is 0. The API middleware and the Celery
signals (`task_timing.py`) open a batch around each request and task, so code can count freely.

Scrape-time gauges (the state of things now, read when /metrics is asked):

    metrics.register_collector("compute", gauges.collect)

where `collect()` returns prometheus_client metric families (GaugeMetricFamily…). Register from an
AppConfig.ready(); a collector that fails is reported as `kumo_metrics_collector_up{collector}` 0
and the others still answer. `exposition.render()` draws everything in the text format.

Why Redis rather than prometheus_client's multiprocess mode: that mode shares counts through files
in one directory, so it only sums processes of one machine, while Kumo's schedulers, conductors
and web processes may run on several. docs/observability.md says more.
"""

from __future__ import annotations

import contextvars
import json
import logging
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from . import store
from .exposition import register_collector
from .families import Family

__all__ = ["Family", "batch", "begin_batch", "end_batch", "inc", "observe", "register_collector"]

log = logging.getLogger(__name__)

_MAX_LABEL_LENGTH = 128
_pending: contextvars.ContextVar[dict[tuple[str, str], int | float] | None] = (
    contextvars.ContextVar("kumo_metrics_batch", default=None)
)


def inc(family: Family, *labels: str, amount: int = 1) -> None:
    """Add `amount` to a counter, labelled in the family's label order."""
    _add({(family.key, field_name(family, labels)): amount})


def observe(family: Family, seconds: float, *labels: str) -> None:
    """Count one observation of a histogram: its bucket (le the first bound ≥ seconds) and sum."""
    bucket = bisect_left(family.buckets, seconds)
    _add({
        (family.key, field_name(family, labels, bucket)): 1,
        (family.key, field_name(family, labels, "sum")): float(seconds),
    })


def field_name(family: Family, labels: tuple[str, ...], part: int | str | None = None) -> str:
    """The hash field of one labelled series (and, for a histogram, its bucket index or "sum")."""
    return _encoded(family, tuple(labels), part)


# Label sets are few (that is the rule for labels), so each is encoded once per process.
@lru_cache(maxsize=8192)
def _encoded(family: Family, labels: tuple[str, ...], part: int | str | None) -> str:
    if len(labels) != len(family.labels):
        raise ValueError(f"{family.name} takes labels {family.labels}, got {labels!r}")
    values: list[str | int] = [str(v)[:_MAX_LABEL_LENGTH] for v in labels]
    if part is not None:
        values.append(part)
    # Default separators: json's C encoder then does the work (a custom one costs 4× as much).
    return json.dumps(values)


@contextmanager
def batch() -> Iterator[None]:
    """Gather the increments of the block and hand them to the store together when it ends. Nested
    batches join the outermost one."""
    token = begin_batch()
    try:
        yield
    finally:
        end_batch(token)


def begin_batch() -> contextvars.Token | None:
    """`batch()` for code that cannot hold a `with` open (signal pairs); None when one is open."""
    if _pending.get() is not None:
        return None
    return _pending.set({})


def end_batch(token: contextvars.Token | None) -> None:
    if token is None:
        return
    pending = _pending.get()
    try:
        _pending.reset(token)
    except ValueError:  # opened in another context (a signal pair split across them)
        _pending.set(None)
    if pending:
        _send(pending)


def _add(increments: dict[tuple[str, str], int | float]) -> None:
    pending = _pending.get()
    if pending is None:
        _send(increments)
        return
    for field, amount in increments.items():
        pending[field] = pending.get(field, 0) + amount


def _send(increments: dict[tuple[str, str], int | float]) -> None:
    # Counting must never fail the work it counts (the store already backs off from a dead Redis).
    try:
        store.current().add(increments)
    except Exception:
        log.exception("metrics not recorded")
