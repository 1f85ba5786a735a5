"""The agent times its own tasks from Celery's signals and sends the timings with its next
guest-statistics report; a report that fails keeps them for the next one."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

from celery.signals import task_postrun, task_prerun

from compute_agent import messages as msg
from compute_agent.drivers.libvirt import LibvirtDriver
from compute_agent.guest_stats import StatsLoop
from compute_agent.reporter import ReportError
from compute_agent.task_timing import TaskTimes, process_times


class Recorder:
    def __init__(self) -> None:
        self.reports: list[msg.GuestStatsReport] = []
        self.fail: Exception | None = None

    def guest_stats(self, report: msg.GuestStatsReport) -> None:
        if self.fail is not None:
            raise self.fail
        # Through the wire format, as the conductor receives it.
        self.reports.append(msg.GuestStatsReport.from_dict(report.to_dict()))


class Task:
    """What Celery's signals hand over: the task, its name and its request."""

    def __init__(self, name: str, published_ago: float | None = None) -> None:
        self.name = name
        headers = {} if published_ago is None else {
            msg.PUBLISHED_AT_HEADER: time.time() - published_ago}
        self.request = SimpleNamespace(delivery_info={"routing_key": "compute.host-a"},
                                       headers=headers)


def run(name: str, state: str, seconds: float, published_ago: float | None = None) -> None:
    task, task_id = Task(name, published_ago), str(uuid.uuid4())
    task_prerun.send(sender=task, task_id=task_id, task=task)
    time.sleep(seconds)
    task_postrun.send(sender=task, task_id=task_id, task=task, state=state)


def test_each_finished_task_is_timed_with_its_queue_outcome_and_wait() -> None:
    times = process_times()  # connected to Celery's signals, as in the agent's process
    times.drain()  # what earlier tests of this process ran
    run("compute.spawn", "SUCCESS", 0.02, published_ago=2.0)
    run("compute.stop", "FAILURE", 0)

    runs, waits = times.drain()
    assert [(q, name, outcome) for q, name, outcome, _ in runs] == [
        ("compute.host-a", "compute.spawn", "success"),
        ("compute.host-a", "compute.stop", "failure")]
    assert runs[0][3] >= 0.02
    ((queue, waited),) = waits  # only the stamped message says when it was published
    assert queue == "compute.host-a" and 1.9 < waited < 5
    assert times.drain() == ([], [])


def test_the_next_report_carries_them_and_a_failed_one_gives_them_back(
        driver: LibvirtDriver) -> None:
    times = TaskTimes()
    sender = Recorder()
    loop = StatsLoop("host-a", driver, sender, 10.0, timings=times)
    times._runs.append(["compute.host-a", "compute.spawn", "success", 0.5])
    times._waits.append(["compute.host-a", 0.1])

    sender.fail = ReportError("broker away")
    assert loop.send_once() is False
    times._runs.append(["compute.host-a", "compute.stop", "success", 0.2])
    sender.fail = None
    assert loop.send_once()
    (report,) = sender.reports
    assert [r[1] for r in report.task_runs] == ["compute.spawn", "compute.stop"]
    assert report.task_waits == [["compute.host-a", 0.1]]

    assert loop.send_once()  # sent once only
    assert sender.reports[-1].task_runs == []


def test_a_long_outage_keeps_only_the_newest_timings() -> None:
    times = TaskTimes(max_kept=3)
    for n in range(5):
        times._runs.append(["q", f"t{n}", "success", 0.1])
    runs, _ = times.drain()
    assert [r[1] for r in runs] == ["t2", "t3", "t4"]
    # Unsent, then two more finish before they are given back: the oldest go.
    times._runs.extend([["q", "t5", "success", 0.1], ["q", "t6", "success", 0.1]])
    times.give_back(runs, [])
    assert [r[1] for r in times.drain()[0]] == ["t4", "t5", "t6"]
