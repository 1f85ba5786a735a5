"""Beat runs inside the conductor (cloud/conductor/beat.py): of several conductors exactly one sends
the periodic tasks, and when it stops another takes over; the lock is PostgreSQL's advisory lock or,
on SQLite, a file lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery, signals
from django.db import connection

from cloud.conductor.beat import AdvisoryLock, BeatLeader, BeatThread, FileLock, enabled


def wait_until(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_only_one_file_lock_at_a_time_and_the_next_gets_it_once_released(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "beat.lock"), FileLock(tmp_path / "beat.lock")
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


@pytest.fixture
def sent() -> Iterator[list[str]]:
    """Names of the periodic tasks beat publishes, whichever leader sends them."""
    names: list[str] = []

    def record(sender: str | None = None, **_: object) -> None:
        names.append(str(sender))

    signals.before_task_publish.connect(record, weak=False)
    yield names
    signals.before_task_publish.disconnect(record)


def conductor_app() -> Celery:
    app = Celery("beat-test", broker="memory://", set_as_current=False)
    app.conf.beat_schedule = {"tick": {"task": "conductor.tick", "schedule": 0.2}}
    return app


def test_two_conductors_one_beat_and_the_other_takes_over(tmp_path: Path, sent) -> None:
    lock_path = tmp_path / "beat.lock"
    leaders = [
        BeatLeader(conductor_app(), make_lock=lambda: FileLock(lock_path), retry_seconds=0.1,
                   schedule_filename=str(tmp_path / f"schedule-{i}"))
        for i in range(2)
    ]
    for leader in leaders:
        leader.start()
    try:
        wait_until(lambda: any(leader.leading.is_set() for leader in leaders))
        time.sleep(0.5)  # time enough for the second to try, and fail, several times
        assert [leader.leading.is_set() for leader in leaders].count(True) == 1
        wait_until(lambda: "conductor.tick" in sent)

        first = next(leader for leader in leaders if leader.leading.is_set())
        other = next(leader for leader in leaders if leader is not first)
        first.stop()
        assert not first.is_alive()
        sent.clear()
        wait_until(other.leading.is_set)
        wait_until(lambda: "conductor.tick" in sent)  # the periodic tasks go on, from the other
    finally:
        for leader in leaders:
            leader.stop()


def test_a_leader_whose_lock_is_lost_stops_its_beat_and_tries_again(tmp_path: Path) -> None:
    lost = threading.Event()

    class Flaky(FileLock):
        def held(self) -> bool:
            return not lost.is_set()

    leader = BeatLeader(conductor_app(), make_lock=lambda: Flaky(tmp_path / "beat.lock"),
                        retry_seconds=0.1, schedule_filename=str(tmp_path / "schedule"))
    leader.start()
    try:
        wait_until(leader.leading.is_set)
        lost.set()
        wait_until(lambda: not leader.leading.is_set())
        lost.clear()
        wait_until(leader.leading.is_set)  # a lock it can hold again: it leads again
    finally:
        leader.stop()


def test_conductor_beat_can_be_turned_off_for_a_separate_beat_process() -> None:
    assert enabled({})
    assert not enabled({"KUMO_CONDUCTOR_BEAT": "0"})


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's advisory lock")
def test_the_advisory_lock_is_held_by_one_session_and_freed_when_it_ends() -> None:
    first, second = AdvisoryLock(), AdvisoryLock()
    try:
        assert first.acquire()
        assert first.held()
        assert not second.acquire()
        first.release()  # as when the holder's process dies: its session ends
        assert second.acquire()
    finally:
        first.release()
        second.release()


def test_beat_sleeps_until_the_next_entry_is_due_and_stops_at_once(tmp_path: Path) -> None:
    """An idle conductor's beat wakes only to send (Celery's threaded beat woke every second), and
    a stop still ends its sleep at once."""
    app = Celery("beat-test", broker="memory://", set_as_current=False)
    app.conf.beat_schedule = {"slow": {"task": "conductor.slow", "schedule": 30.0}}
    beat = BeatThread(app, schedule_filename=str(tmp_path / "schedule"))
    ticks: list[float] = []
    tick = beat.service.scheduler.tick

    def counted_tick() -> float:
        ticks.append(time.monotonic())
        return tick()

    beat.service.scheduler.tick = counted_tick
    beat.start()
    time.sleep(2.5)
    assert len(ticks) == 1  # the first pass, which finds the entry due in 30 s
    started = time.monotonic()
    beat.stop()
    assert not beat.is_alive()
    assert time.monotonic() - started < 1.0
