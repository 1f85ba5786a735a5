"""The agent supervisor of simulated hosts (simhosts/supervise.py), on throwaway children: it starts
again a child that dies, waits longer while it keeps dying, never starts it while its host is
failed, and passes a stop on to it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simhosts.supervise import Supervisor

DIES = [sys.executable, "-c", "import sys; sys.exit(1)"]
SLEEPS = [sys.executable, "-c", "import time; time.sleep(60)"]


class Recorder:
    """The child's command, noting when each start asked for it."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.times: list[float] = []

    def __call__(self) -> list[str]:
        self.times.append(time.monotonic())
        return self.argv


@contextmanager
def running(supervisor: Supervisor) -> Iterator[list[int]]:
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(supervisor.run()), daemon=True)
    thread.start()
    try:
        yield status
    finally:
        supervisor.stop()
        thread.join(10)
        child = supervisor.child
        if child is not None and child.poll() is None:
            child.kill()  # left by a broken supervisor: not by this test
        assert not thread.is_alive(), "the supervisor did not stop"


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_child_that_keeps_dying_is_started_again_after_longer_and_longer_pauses() -> None:
    argv = Recorder(DIES)
    supervisor = Supervisor(argv, lambda: False, min_backoff=0.1, max_backoff=0.4,
                            quick_death=30, log=lambda _: None)
    with running(supervisor):
        wait_until(lambda: len(argv.times) >= 6)
    gaps = [b - a for a, b in zip(argv.times, argv.times[1:], strict=False)][:5]
    # Each gap is the pause plus the child's own life (a Python start, well under 0.3 s here).
    for gap, pause in zip(gaps, [0.1, 0.2, 0.4, 0.4, 0.4], strict=True):
        assert pause <= gap < pause + 0.3, gaps


def test_a_child_that_ran_for_a_while_is_started_again_after_the_shortest_pause() -> None:
    argv = Recorder([sys.executable, "-c", "import time; time.sleep(0.3)"])
    supervisor = Supervisor(argv, lambda: False, min_backoff=0.1, max_backoff=5,
                            quick_death=0.2, log=lambda _: None)
    with running(supervisor):
        wait_until(lambda: len(argv.times) >= 4)
    gaps = [b - a for a, b in zip(argv.times, argv.times[1:], strict=False)][:3]
    assert all(gap < 0.3 + 0.1 + 0.3 for gap in gaps), gaps


def test_nothing_is_started_while_the_host_is_failed(tmp_path: Path) -> None:
    marker = tmp_path / "failed"
    marker.touch()
    argv = Recorder(SLEEPS)
    supervisor = Supervisor(argv, marker.exists, min_backoff=0.1, held_poll=0.05,
                            log=lambda _: None)
    with running(supervisor):
        time.sleep(0.5)
        assert argv.times == []
        marker.unlink()
        wait_until(lambda: supervisor.child is not None and supervisor.child.poll() is None)
        # The host fails again: its agent is killed with it, and stays dead while it is failed.
        marker.touch()
        assert supervisor.child is not None
        supervisor.child.kill()
        time.sleep(0.5)
        assert len(argv.times) == 1
        marker.unlink()
        wait_until(lambda: len(argv.times) == 2)


def test_a_stop_reaches_the_child_and_ends_the_supervisor() -> None:
    supervisor = Supervisor(lambda: SLEEPS, lambda: False, log=lambda _: None)
    with running(supervisor) as status:
        wait_until(lambda: supervisor.child is not None)
        child = supervisor.child
    assert child is not None and child.poll() == -signal.SIGTERM
    assert status == [-signal.SIGTERM]
    assert supervisor.starts == 1


def test_sigterm_to_the_supervising_process_stops_its_child() -> None:
    program = ("import sys; from simhosts.supervise import supervise; "
               f"sys.exit(supervise(lambda: {SLEEPS!r}, lambda: False))")
    proc = subprocess.Popen([sys.executable, "-c", program])
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    try:
        wait_until(lambda: children.read_text().split() != [])
        child = int(children.read_text().split()[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM  # the child's, as a shell says it
        assert not Path(f"/proc/{child}").exists()
    finally:
        proc.kill()
        proc.wait()
