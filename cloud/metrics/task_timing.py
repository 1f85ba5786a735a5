"""Task latency per queue, from Celery's signals (cloud/celery.py connects them in every process).

A control-plane process stamps each message it publishes with the wall-clock time; a
control-plane worker then counts how long the task waited in its queue and how long it ran, and
sends everything the task recorded (its claims, its scheduler decision…) in one batch when it ends.
Compute agents are Celery workers too but never import `cloud`: they time their own tasks
(compute_agent/task_timing.py) and send the timings with their guest statistics, which the
conductor counts into the same families (record_agent_tasks).
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from compute_agent.messages import PUBLISHED_AT_HEADER, published_at, queue_of

from . import batch, begin_batch, end_batch, observe
from .families import TASK_SECONDS, TASK_WAIT_SECONDS

_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}

# (task id, thread) -> (start, batch token): prerun and postrun of one run share a thread.
_running: dict[tuple[str, int], tuple[float, contextvars.Token | None]] = {}


def stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())


def started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    token = begin_batch()
    _running[(task_id, threading.get_ident())] = (time.perf_counter(), token)
    published = published_at(task)
    if published is not None:
        observe(TASK_WAIT_SECONDS, max(0.0, time.time() - published), queue_of(task))


def finished(task_id: str | None = None, task: Any = None, state: str | None = None,
             **_: Any) -> None:
    run = _running.pop((task_id or "", threading.get_ident()), None)
    if run is None or task is None:
        return
    began, token = run
    outcome = _OUTCOMES.get(state or "", (state or "unknown").lower())
    try:
        observe(TASK_SECONDS, time.perf_counter() - began, queue_of(task), task.name, outcome)
    finally:
        end_batch(token)


def connect() -> None:
    """Connect the three handlers (idempotent: each has a dispatch uid)."""
    before_task_publish.connect(stamp, weak=False, dispatch_uid="kumo-metrics-stamp")
    task_prerun.connect(started, weak=False, dispatch_uid="kumo-metrics-started")
    task_postrun.connect(finished, weak=False, dispatch_uid="kumo-metrics-finished")


def record_agent_tasks(queue: str, runs: object, waits: object) -> None:
    """Count an agent's task timings (GuestStatsReport.task_runs and task_waits) as this module
    counts a control-plane worker's, in one batch, under `queue`: the sending host's own, whatever
    the entries say, so that a host cannot count into another queue's series. Entries of a shape
    this version does not know are skipped: a report is never refused for its timings."""
    with batch():
        for entry in runs if isinstance(runs, list) else ():
            try:
                _, name, outcome, seconds = entry
                observe(TASK_SECONDS, max(0.0, float(seconds)), queue, str(name), str(outcome))
            except (TypeError, ValueError):
                continue
        for entry in waits if isinstance(waits, list) else ():
            try:
                _, seconds = entry
                observe(TASK_WAIT_SECONDS, max(0.0, float(seconds)), queue)
            except (TypeError, ValueError):
                continue
