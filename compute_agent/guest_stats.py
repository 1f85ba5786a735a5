"""The guests' statistics report: every `interval` seconds, one bulk read of every running guest's
counters from the driver, sent to the conductor as one GuestStatsReport.

It runs on a thread of its own beside the heartbeat, so a slow hypervisor delays statistics and
never the heartbeat that keeps the host alive (or the other way round). Counters are sent raw
(cumulative, as libvirt keeps them): rates are worked out by whoever reads two samples, so a lost
report loses nothing but resolution.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from compute_agent import messages as msg
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.reporter import ReportError

LOG = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0


class StatsSender(Protocol):
    def guest_stats(self, report: msg.GuestStatsReport) -> None: ...


def collect(host: str, driver: Driver, interval: float,
            clock: Callable[[], float] = time.time) -> msg.GuestStatsReport:
    """One report of every running guest on this host."""
    guests = driver.guest_stats()
    return msg.GuestStatsReport(host=host, collected_at=clock(), interval=interval, guests=guests)


class StatsLoop:
    """Sends a report at once, then every `interval` seconds, until stopped. Never raises: a
    hypervisor or broker that fails costs one sample, logged once until it works again."""

    def __init__(self, host: str, driver: Driver, sender: StatsSender, interval: float) -> None:
        self.host = host
        self.driver = driver
        self.sender = sender
        self.interval = interval
        self.sent = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send_once(self) -> bool:
        try:
            self.sender.guest_stats(collect(self.host, self.driver, self.interval))
        except (DriverError, ReportError) as exc:
            if not self._failing:
                LOG.warning("guest statistics not sent: %s", exc)
            self._failing = True
            return False
        except Exception:  # a bug here must not kill the thread: the next period tries again
            LOG.exception("guest statistics not sent")
            return False
        if self._failing:
            LOG.info("guest statistics sent again")
        self._failing = False
        self.sent += 1
        return True

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self.interval <= 0:
                return
            self._thread = threading.Thread(target=self._run, name="guest-stats", daemon=True)
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
            self.send_once()
            # Keep to the period whatever the collection took, so samples stay evenly spaced.
            if self._stop.wait(max(0.0, self.interval - (time.monotonic() - started))):
                return
