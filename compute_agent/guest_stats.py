"""The guests' statistics report: every `interval` seconds, one bulk read of every running guest's
counters from the driver, sent to the conductor as one GuestStatsReport.

It runs on a thread of its own beside the heartbeat, so a slow hypervisor delays statistics and
never the heartbeat that keeps the host alive (or the other way round). Counters are sent raw
(cumulative, as libvirt keeps them): rates are worked out by whoever reads two samples, so a lost
report loses nothing but resolution. Each report also carries the timings of the agent's tasks
finished since the last one (task_timing.py), given back to be sent again when it fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from compute_agent import messages as msg
from compute_agent.drivers.base import Driver, DriverError
from compute_agent.periodic import Periodic
from compute_agent.reporter import ReportError
from compute_agent.task_timing import TaskTimes, process_times

LOG = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0


class StatsSender(Protocol):
    def guest_stats(self, report: msg.GuestStatsReport) -> None: ...


def collect(host: str, driver: Driver, interval: float,
            clock: Callable[[], float] = time.time) -> msg.GuestStatsReport:
    """One report of every running guest on this host."""
    guests = driver.guest_stats()
    return msg.GuestStatsReport(host=host, collected_at=clock(), interval=interval, guests=guests)


class StatsLoop(Periodic):
    """Sends a report at once, then every `interval` seconds, until stopped. Never raises: a
    hypervisor or broker that fails costs one sample, logged once until it works again."""

    name = "guest-stats"
    keep_period = True

    def __init__(self, host: str, driver: Driver, sender: StatsSender, interval: float,
                 timings: TaskTimes | None = None) -> None:
        super().__init__(interval)
        self.host = host
        self.driver = driver
        self.sender = sender
        # This process's task timings unless told otherwise (a test's own).
        self.timings = timings if timings is not None else process_times()
        self.sent = 0
        self._failing = False

    def send_once(self) -> bool:
        runs, waits = self.timings.drain()
        try:
            report = collect(self.host, self.driver, self.interval)
            report.task_runs, report.task_waits = runs, waits
            self.sender.guest_stats(report)
        except (DriverError, ReportError) as exc:
            self.timings.give_back(runs, waits)
            if not self._failing:
                LOG.warning("guest statistics not sent: %s", exc)
            self._failing = True
            return False
        except Exception:  # a bug here must not kill the thread: the next period tries again
            self.timings.give_back(runs, waits)
            LOG.exception("guest statistics not sent")
            return False
        if self._failing:
            LOG.info("guest statistics sent again")
        self._failing = False
        self.sent += 1
        return True

    def tick(self) -> None:
        self.send_once()
