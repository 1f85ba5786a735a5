"""The broker is the edge of the unit tests: what the control plane would publish, recorded.

Messages are published on commit (cloud/rpc.py). pytest-django wraps each test in a transaction
that never commits, so on-commit callbacks would never run and "nothing was sent" would hold
whatever the code did. `CommitsRun` puts the commit back: a callback registered inside the code's
own outermost `transaction.atomic()` runs when that block exits cleanly (and is dropped if it rolls
back), and one registered outside any block runs at once, exactly as in production.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.db import connection
from django.db.transaction import Atomic


class Sent(NamedTuple):
    name: str
    args: list
    queue: str

    @property
    def payload(self) -> Any:
        """The first argument: the contract dataclass as a dict, for messages to hosts."""
        return self.args[0]


class CommitsRun:
    """Within a test's transaction, run on-commit callbacks when production would."""

    def __init__(self) -> None:
        self.depth = len(connection.atomic_blocks)
        self._exit = Atomic.__exit__
        self._on_commit = connection.on_commit

    def install(self, monkeypatch: Any) -> None:
        commits = self

        def exit_(atomic: Atomic, exc_type: Any, exc: Any, tb: Any) -> Any:
            result = commits._exit(atomic, exc_type, exc, tb)
            if len(connection.atomic_blocks) == commits.depth:
                commits.run_pending()
            return result

        def on_commit(func: Any, robust: bool = False) -> None:
            if len(connection.atomic_blocks) <= commits.depth:
                func()  # no transaction of the code's own is open: production runs it now
            else:
                commits._on_commit(func, robust)

        monkeypatch.setattr(Atomic, "__exit__", exit_)
        monkeypatch.setattr(connection, "on_commit", on_commit)

    def run_pending(self) -> None:
        # Everything still queued belongs to blocks that have now all exited cleanly (a rolled-back
        # savepoint already dropped its callbacks).
        pending, connection.run_on_commit = connection.run_on_commit, []
        for _, func, _robust in pending:
            func()
