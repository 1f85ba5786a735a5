"""The hosts a conductor has seen without a credential, remembered in each process and forgotten
everywhere the moment any host's credential is written.

A report from a host that never joined (the simulated hosts of `make run HOSTS=3`, test stacks, the
single-host default) is applied only after asking whether that host has a credential
(report_senders.accepts): one query per message, 11% of the conductor's CPU in a boot benchmark.
Here each process remembers the answer "none", tagged with the *credential generation* it read just
before asking the database, for up to MEMO_SECONDS.

The generation is one counter in the shared cache (Redis: every conductor on every machine reads
the same one), bumped by every write of a HostCredential (signals wired in apps.py; a host joins
through host_credentials.join). A message reads the counter (one round trip, no SQL) and trusts a
remembered "none" only if the counter has not moved since, so the first unsigned message after a
host joined, in any process, is checked against the database and refused. As in
cloud/identity/token_cache.py, which this follows:

- The counter is read *before* the database: a check that raced a join either read the old counter
  (its memo is stale-tagged and never used) or read the new one after the credential was visible.
- It is bumped before the credential is written and again after its transaction commits, so a
  memo refilled from the not yet committed rows in between is stale too.
- A write whose first bump cannot reach the shared cache is refused (the join fails and can be
  tried again): a credential is never made while memos keep saying "none".
- If the counter cannot be read, or is missing, nothing is remembered: every message asks the
  database, as before. A counter made again starts at a random value.
- A credential removed needs no bump: a memo only ever says "none".
"""

from __future__ import annotations

import logging
import threading
import time

from cloud.identity.generation import SharedGeneration

log = logging.getLogger(__name__)

GENERATION_KEY = "enrollment:credential-generation"
# A memo's longest life, whatever the counter says: a bound for the unforeseen, not the guard.
MEMO_SECONDS = 60.0
# Hosts remembered per process; past it the memo starts again (a conductor serves its hosts).
MAX_HOSTS = 100_000

_memo: dict[str, tuple[int, float]] = {}  # host -> (generation, kept until, monotonic)
_lock = threading.Lock()


_generation = SharedGeneration(
    GENERATION_KEY, forget_local=_memo.clear, unreadable="checking hosts in the database",
    refused="The new host credential could not be announced to the conductors (the shared cache "
            "is unreachable), so it was not made. Try again when the cache is back.")


def current_generation() -> int | None:
    """The shared credential generation, or None when it cannot be known (then nothing is
    remembered)."""
    return _generation.current()


def known_without(host: str, generation: int | None) -> bool:
    """Whether this process saw `host` without a credential under this generation, recently."""
    if generation is None:
        return False
    entry = _memo.get(host)
    return entry is not None and entry[0] == generation and entry[1] > time.monotonic()


def remember_without(host: str, generation: int | None) -> None:
    """The database says `host` has no credential; `generation` was read before asking it."""
    if generation is None:
        return
    with _lock:
        if len(_memo) >= MAX_HOSTS:
            _memo.clear()
        _memo[host] = (generation, time.monotonic() + MEMO_SECONDS)


def before_change() -> None:
    """A credential is about to be written: make every process's memo stale. Raises (refusing the
    write) if the shared cache cannot be reached."""
    _generation.before_change()


def after_change() -> None:
    """The credential is written: bump again once its transaction commits."""
    _generation.after_change()


def clear_local() -> None:
    """Forget this process's memo (tests)."""
    _memo.clear()
