"""A daemon thread that does one thing at once and then every `interval` seconds until stopped:
the agent's heartbeat and its guests' statistics."""

from __future__ import annotations

import threading
import time


class Periodic:
    """Subclasses give `name` and `tick()` (which must not raise). With `keep_period` the wait
    after a tick is shortened by the tick's own time, so samples stay evenly spaced."""

    name = "periodic"
    keep_period = False

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self.interval <= 0:
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            spent = time.monotonic() - started if self.keep_period else 0.0
            if self._stop.wait(max(0.0, self.interval - spent)):
                return
