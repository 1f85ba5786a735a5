"""Keeping one host's compute agent running, as an init system would on a real machine.

`make run` runs everything under honcho, which stops every process as soon as one exits: an agent
killed with its host (failures.py) would take the whole stack down. So the Procfile runs a
supervisor per host instead, in the machine's namespaces (out of reach of a host's failure):

- the agent is its child; SIGTERM or SIGINT to the supervisor is passed on to it, and the
  supervisor exits once the agent has;
- an agent that dies on its own is started again, but not while its host is failed (the marker
  file), and after a pause: 1 s, doubled up to 10 s while it keeps dying within seconds of its start;
- the agent's command is asked for again at every start: a host that came back has a new libvirtd,
  whose mount namespace the agent must enter.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from .hosts import HostError

MIN_BACKOFF = 1.0
MAX_BACKOFF = 10.0
# An agent that ran for less than this is taken to be failing at start: the next pause doubles.
QUICK_DEATH = 10.0
STOP_TIMEOUT = 20.0  # given to the agent's own clean shutdown before SIGKILL
HELD_POLL = 0.5


class Supervisor:
    def __init__(self, argv: Callable[[], list[str]], held: Callable[[], bool], *,
                 min_backoff: float = MIN_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 quick_death: float = QUICK_DEATH, held_poll: float = HELD_POLL,
                 log: Callable[[str], None] | None = None) -> None:
        """`argv()` gives the child's command (HostError: cannot start now, counted as a quick
        death); while `held()` is true the child is not started."""
        self.argv, self.held = argv, held
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.quick_death, self.held_poll = quick_death, held_poll
        self.log = log or (lambda line: print(f"supervisor: {line}", file=sys.stderr, flush=True))
        self.starts = 0
        self.child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        # Reentrant: the signal handler that calls stop() may interrupt run() holding it.
        self._lock = threading.RLock()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop supervising; the running child, if any, is sent `signum`."""
        with self._lock:
            self._stopping.set()
            if self.child is not None and self.child.poll() is None:
                self.child.send_signal(signum)

    def run(self) -> int:
        """Supervise until stop(); the exit status of the last child (0 if none ran)."""
        backoff = self.min_backoff
        status = 0
        while not self._stopping.is_set():
            while self.held() and not self._stopping.is_set():
                self._stopping.wait(self.held_poll)
            if self._stopping.is_set():
                break
            started = time.monotonic()
            try:
                argv = self.argv()
            except HostError as exc:
                self.log(f"cannot start: {exc}")
            else:
                with self._lock:
                    if self._stopping.is_set():
                        break
                    self.child = subprocess.Popen(argv)
                    self.starts += 1
                if self._stopping.is_set():  # told to stop by a signal while it was starting
                    self.child.send_signal(signal.SIGTERM)
                status = self.child.wait()
                if self._stopping.is_set():
                    break
                self.log(f"exited with status {status} after "
                         f"{time.monotonic() - started:.1f} s")
            if self.held():
                backoff = self.min_backoff  # a failed host's agent: a fresh start once it returns
                continue
            if time.monotonic() - started >= self.quick_death:
                backoff = self.min_backoff
            self.log(f"starting again in {backoff:g} s")
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        return self._finish(status)

    def _finish(self, status: int) -> int:
        child = self.child
        if child is None:
            return status
        try:
            return child.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()


def supervise(argv: Callable[[], list[str]], held: Callable[[], bool]) -> int:
    """Run a Supervisor in the foreground until SIGTERM or SIGINT, which reach the child too; the
    exit status is the last child's."""
    supervisor = Supervisor(argv, held)

    def forward(signum: int, _frame: FrameType | None) -> None:
        supervisor.stop(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    status = supervisor.run()
    return 128 - status if status < 0 else status  # killed by a signal: as a shell says it
