"""Beat's schedule (cloud/beat.py) runs inside the conductor worker, on one conductor at a time.

A separate `celery beat` process cost a whole Django process (~100 MiB) to send nine periodic
tasks, and was a single point of failure (docs/failover.md). Instead every worker that consumes the
conductor queue runs a leader thread: it takes a lock, and the holder runs Celery's beat service in
a thread of its own; the others wait and try again every RETRY_SECONDS. The lock is one no dead
process can keep:

- PostgreSQL: a session advisory lock on a connection of the thread's own. A conductor that dies
  closes that connection and the server frees the lock at once (a dead machine: once TCP
  keepalive notices). A holder whose connection breaks stops its beat before trying again, so two
  beats overlap for at most RETRY_SECONDS, which the periodic tasks tolerate (each is idempotent
  and moves state by compare-and-swap).
- SQLite (one machine by nature): an flock on a file beside beat's schedule file.

KUMO_CONDUCTOR_BEAT=0 turns this off for a deployment that runs `celery -A cloud beat` itself
(exactly one then, as before).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from celery import Celery, signals
from celery.beat import Service
from django.conf import settings
from django.db import connections

from compute_agent import messages as msg

LOG = logging.getLogger(__name__)

ENABLE_ENV = "KUMO_CONDUCTOR_BEAT"
# pg_advisory_lock's key: "KumoBeat" as a 64-bit number, unlikely to meet anyone else's lock.
ADVISORY_KEY = int.from_bytes(b"KumoBeat", "big") & 0x7FFF_FFFF_FFFF_FFFF
RETRY_SECONDS = 2.0
# The longest beat's loop sleeps: it wakes when the next entry is due, or sooner if the schedule
# is changed. Celery's threaded beat wakes every second instead (so that its stop is noticed),
# which cost an idle conductor about 0.003 CPU-s per second for nothing; this loop's sleep is an
# Event that stop() sets.
MAX_INTERVAL_SECONDS = 60.0


class BeatLock(Protocol):
    def acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL session advisory lock on a connection of its own (not the thread's Django
    connection, which Django may close between tasks)."""

    def __init__(self, alias: str = "default") -> None:
        self._conn = connections.create_connection(alias)

    def acquire(self) -> bool:
        with self._conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
            return bool(cursor.fetchone()[0])

    def held(self) -> bool:
        """Whether the session (and so the lock) still lives."""
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure: the session, and the lock, may be gone
            return False

    def release(self) -> None:
        try:
            # Unlocked first: a closed session frees its locks only once its backend has exited,
            # which a standby asking at once could still find held.
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_all()")
        except Exception:  # a broken session holds nothing any more
            LOG.debug("beat: unlocking before closing the lock's session failed", exc_info=True)
        try:
            self._conn.close()  # the session ends, and with it the lock
        except Exception:  # a broken session is as good as closed
            LOG.debug("beat: closing the lock's session failed", exc_info=True)


class FileLock:
    """flock on a file: for SQLite, whose every process is on one machine."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def default_lock() -> BeatLock:
    if connections["default"].vendor == "postgresql":
        return AdvisoryLock()
    return FileLock(Path(f"{settings.CELERY_BEAT_SCHEDULE_FILENAME}.lock"))


class BeatThread(threading.Thread):
    """Celery's beat Service in a thread, sleeping until the next entry is due (celery.beat's
    _Threaded ticks every second so that its plain time.sleep ends soon after a stop)."""

    def __init__(self, app: Celery, max_interval: float = MAX_INTERVAL_SECONDS,
                 **service_options: Any) -> None:
        super().__init__(name="Beat", daemon=True)
        self.app = app
        service_options.setdefault("remote_control", False)  # the worker answers for this process
        self.service = Service(app, max_interval=max_interval, **service_options)
        self._stopping = threading.Event()

    def run(self) -> None:
        self.app.set_current()
        service = self.service
        signals.beat_init.send(sender=service)
        scheduler = service.scheduler
        try:
            while not self._stopping.is_set():
                # How long until the next entry is due (0: another is due now). The scheduler
                # writes its schedule file itself as it sends (Scheduler.apply_async).
                interval = scheduler.tick()
                if interval and interval > 0:
                    self._stopping.wait(interval)
        finally:
            service.sync()  # writes the schedule file and closes it

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self.join(timeout)


class BeatLeader(threading.Thread):
    """Waits for the lock, runs beat while it holds it, and gives both up when stopped."""

    def __init__(self, app: Celery, make_lock: Any = default_lock,
                 retry_seconds: float = RETRY_SECONDS, **service_options: Any) -> None:
        super().__init__(name="beat-leader", daemon=True)
        self.app = app
        self.make_lock = make_lock
        self.retry_seconds = retry_seconds
        self.service_options = service_options
        self.leading = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            lock: BeatLock | None = None
            try:
                lock = self.make_lock()
                if lock.acquire():
                    self._lead(lock)
            except Exception:  # the database away: try again, never die
                LOG.exception("beat: the lock could not be taken; trying again")
            finally:
                if lock is not None:
                    lock.release()
            self._stopping.wait(self.retry_seconds)

    def _lead(self, lock: BeatLock) -> None:
        LOG.info("beat: this conductor now sends the periodic tasks")
        beat = BeatThread(self.app, **self.service_options)
        beat.start()
        self.leading.set()
        try:
            while not self._stopping.wait(self.retry_seconds):
                if not lock.held():
                    LOG.warning("beat: the lock's database session was lost; beat stops here "
                                "and another conductor may take over")
                    break
                if not beat.is_alive():
                    LOG.error("beat: its thread died; starting it again")
                    break
        finally:
            self.leading.clear()
            beat.stop()  # its sleep ends at once

    def stop(self, timeout: float = 15) -> None:
        self._stopping.set()
        self.join(timeout)


def enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get(ENABLE_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


_leader: BeatLeader | None = None


@signals.worker_ready.connect
def _start_on_conductor(sender: Any = None, **_: object) -> None:
    """On a worker that consumes the conductor queue (only there: a scheduler never leads)."""
    global _leader
    app = sender.app
    if msg.CONDUCTOR_QUEUE not in app.amqp.queues.consume_from or not enabled():
        return
    _leader = BeatLeader(app)
    _leader.start()


@signals.worker_shutdown.connect
def _stop_on_shutdown(**_: object) -> None:
    if _leader is not None:
        _leader.stop()
