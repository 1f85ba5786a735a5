"""How long this agent's tasks waited in its queue and ran, for the control plane's /metrics.

The control plane's workers count their own tasks (cloud/metrics/task_timing.py), but an agent
never imports `cloud` and has no Redis of the metrics: it keeps each finished task's run time and
queue wait here, from Celery's signals, and the guest-statistics loop (guest_stats.py) hands
them to the conductor with its next report, which counts them into the same families
(kumo_task_duration_seconds, kumo_task_queue_wait_seconds) under the agent's queue. Raw
observations rather than histogram buckets: the buckets are the control plane's to choose. A
report that cannot be sent gives its timings back for the next one; at most MAX_KEPT of each
are kept between reports (the oldest dropped) so a broker outage cannot grow the agent's memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from compute_agent.messages import published_at, queue_of

MAX_KEPT = 5000
_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}

# [queue, task name, outcome, seconds] and [queue, seconds], as the report carries them.
Run = list[Any]
Wait = list[Any]


class TaskTimes:
    """The timings of tasks finished since the last report (thread-safe: the threads pool)."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, int], float] = {}
        self._runs: deque[Run] = deque(maxlen=max_kept)
        self._waits: deque[Wait] = deque(maxlen=max_kept)

    def started(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task_id is None or task is None:
            return
        now = time.perf_counter()
        published = published_at(task)
        with self._lock:
            self._running[(task_id, threading.get_ident())] = now
            if published is not None:
                self._waits.append([queue_of(task), round(max(0.0, time.time() - published), 6)])

    def finished(self, task_id: str | None = None, task: Any = None, state: str | None = None,
                 **_: Any) -> None:
        with self._lock:
            began = self._running.pop((task_id or "", threading.get_ident()), None)
            if began is None or task is None:
                return
            outcome = _OUTCOMES.get(state or "", (state or "unknown").lower())
            self._runs.append([queue_of(task), str(task.name), outcome,
                               round(time.perf_counter() - began, 6)])

    def drain(self) -> tuple[list[Run], list[Wait]]:
        """Everything kept, which is forgotten here (give_back returns it after a failed send)."""
        with self._lock:
            runs, waits = list(self._runs), list(self._waits)
            self._runs.clear()
            self._waits.clear()
        return runs, waits

    def give_back(self, runs: list[Run], waits: list[Wait]) -> None:
        """Put unsent timings back before the ones that finished since (oldest first)."""
        with self._lock:
            # A bounded deque built anew keeps its newest entries (extendleft would drop them).
            self._runs = deque([*runs, *self._runs], maxlen=self._runs.maxlen)
            self._waits = deque([*waits, *self._waits], maxlen=self._waits.maxlen)


_process_times: TaskTimes | None = None


def process_times() -> TaskTimes:
    """This process's TaskTimes, connected to Celery's task signals the first time it is asked."""
    global _process_times
    if _process_times is None:
        # Imported here, not at the top: the worker imports celery lean first (boundary.py),
        # and a module-level import would load celery's full set (Django's fixup among them).
        from celery.signals import task_postrun, task_prerun

        _process_times = TaskTimes()
        task_prerun.connect(_process_times.started, weak=False, dispatch_uid="kumo-agent-started")
        task_postrun.connect(_process_times.finished, weak=False,
                             dispatch_uid="kumo-agent-finished")
    return _process_times
