"""Task latency per queue from Celery's signals: run time by queue, task and outcome; queue wait
from the publisher's stamp; everything a task counts sent in one batch when it ends."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from cloud import metrics
from cloud.celery import app
from cloud.metrics import exposition, task_timing
from cloud.metrics.families import CLAIMS

from .conftest import Scrape


@app.task(name="tests.metrics.counts_two_claims")
def counts_two_claims(fail: bool = False) -> None:
    metrics.inc(CLAIMS, "instance")
    metrics.inc(CLAIMS, "instance")
    if fail:
        raise RuntimeError("on purpose")


def drawn() -> Scrape:
    return Scrape(exposition.render().decode())


def test_a_task_run_is_timed_and_what_it_counted_goes_in_one_round_trip(clean_store, monkeypatch):
    calls = []
    real_add = clean_store.add
    monkeypatch.setattr(clean_store, "add", lambda inc: (calls.append(inc), real_add(inc)))

    counts_two_claims.apply()
    counts_two_claims.apply(kwargs={"fail": True})

    assert len(calls) == 2  # one per task: its claims and its own timing together
    after = drawn()
    assert after.value("kumo_claims_total", kind="instance") == 4
    task = "tests.metrics.counts_two_claims"
    assert after.value("kumo_task_duration_seconds_count", task=task, outcome="success") == 1
    assert after.value("kumo_task_duration_seconds_count", task=task, outcome="failure") == 1


def _task(queue: str | None, **request: object) -> SimpleNamespace:
    delivery = {"routing_key": queue} if queue else {}
    return SimpleNamespace(name="cloud.example", request=SimpleNamespace(
        delivery_info=delivery, **request))


def test_run_time_and_queue_wait_are_labelled_with_the_queue_the_task_came_from():
    task = _task("scheduler", kumo_published_at=time.time() - 2.0)
    task_timing.started(task_id="t-1", task=task)
    task_timing.finished(task_id="t-1", task=task, state="SUCCESS")

    after = drawn()
    assert after.value("kumo_task_duration_seconds_count", queue="scheduler",
                       task="cloud.example", outcome="success") == 1
    assert after.value("kumo_task_queue_wait_seconds_count", queue="scheduler") == 1
    assert after.value("kumo_task_queue_wait_seconds_sum", queue="scheduler") == pytest.approx(
        2.0, abs=0.5)
    assert after.value("kumo_task_queue_wait_seconds_bucket", queue="scheduler", le="1.0") == 0


def test_a_message_without_a_stamp_counts_no_wait_and_a_retry_is_its_own_outcome():
    task = _task("conductor")
    task_timing.started(task_id="t-2", task=task)
    task_timing.finished(task_id="t-2", task=task, state="RETRY")

    after = drawn()
    assert after.value("kumo_task_queue_wait_seconds_count") == 0
    assert after.value("kumo_task_duration_seconds_count", queue="conductor",
                       outcome="retry") == 1


def test_publishing_stamps_the_message_with_the_time_and_keeps_an_earlier_stamp():
    headers: dict[str, object] = {}
    task_timing.stamp(headers=headers)
    assert abs(headers[task_timing.PUBLISHED_AT_HEADER] - time.time()) < 5
    # A stamp the publisher set itself is kept.
    kept = {task_timing.PUBLISHED_AT_HEADER: 123.0}
    task_timing.stamp(headers=kept)
    assert kept[task_timing.PUBLISHED_AT_HEADER] == 123.0


def test_an_agent_s_task_timings_count_when_its_guest_statistics_arrive(db, guest_stats_redis):
    from cloud.compute import guest_stats
    from compute_agent import messages as msg

    report = msg.GuestStatsReport(
        host="compute-a", collected_at=time.time(), interval=10.0, guests=[],
        task_runs=[["compute.compute-a", "compute.spawn", "success", 0.3],
                   ["compute.compute-a", "compute.stop", "failure", 0.02],
                   ["compute.compute-a", "a newer sender's shape"],
                   # Counted under the sender's own queue, whatever the entry says.
                   ["scheduler", "compute.reboot", "success", 0.1]],
        task_waits=[["compute.compute-a", 0.004]])
    # As the conductor gets it: through the message's wire format.
    guest_stats.record(msg.GuestStatsReport.from_dict(report.to_dict()))

    after = drawn()
    queue = "compute.compute-a"
    assert after.value("kumo_task_duration_seconds_count", queue=queue, task="compute.spawn",
                       outcome="success") == 1
    assert after.value("kumo_task_duration_seconds_bucket", queue=queue, task="compute.spawn",
                       le="0.25") == 0
    assert after.value("kumo_task_duration_seconds_count", queue=queue,
                       outcome="failure") == 1
    assert after.value("kumo_task_queue_wait_seconds_count", queue=queue) == 1
    assert after.value("kumo_task_queue_wait_seconds_bucket", queue=queue, le="0.005") == 1
    assert after.value("kumo_task_duration_seconds_count", queue=queue,
                       task="compute.reboot") == 1
    assert after.value("kumo_task_duration_seconds_count", queue="scheduler") == 0

    # Timings of a shape this version does not know leave the report's statistics alone.
    odd = msg.GuestStatsReport(host="compute-a", collected_at=time.time(), interval=10.0)
    odd.task_runs = 7  # type: ignore[assignment]
    guest_stats.record(odd)
