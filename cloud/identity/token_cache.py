"""What a token validated to, kept for a few seconds in each web process, and forgotten everywhere
the moment anything identity holds changes.

Validating a token reads the token with its user, project and credential, then the user's roles
there (two queries, one of them a DISTINCT over four joins): on every API request, the largest
share of SQL a list or show made. Here each process remembers the RequestContext a token gave for
up to KUMO_TOKEN_CACHE_SECONDS, tagged with the *identity generation* it read just before asking
the database.

The generation is one counter in the shared cache (Redis: every web worker on every machine reads
the same one). Every change to an identity row that a validation depends on — a token deleted
(revoked), a user or project disabled, renamed or deleted, a role granted or removed directly or
through a group, a group's members, an application credential or its roles — bumps it (signals
wired in apps.py). A request reads the counter (one round trip, no SQL) and uses its remembered
context only if the counter has not moved since, so a revocation is honoured by the very next
request in every process. Why that is safe:

- The counter is read *before* the database. A validation that raced a change either read the
  old counter (its entry is stale-tagged and never used) or read the new one after the change
  was visible.
- It is bumped twice: just before the change is written, and again after its transaction commits.
  A process that refilled its entry between the two (from the not yet committed, old rows) tagged
  it with the first bump, which the second makes stale. The first bump also makes the change
  visible at once to requests that run inside the same transaction (the unit tests).
- A change whose first bump cannot reach the shared cache is refused (an exception in the
  changing transaction rolls it back): it is never applied while caches keep the old answer.
- If the counter cannot be read, or is missing (evicted), nothing is cached and every request
  reads the database, as without the cache. A counter made again starts at a random value, so no
  old entry can match it by chance.
- An entry never outlives its token (expires_at is checked on every use), nor
  KUMO_TOKEN_CACHE_SECONDS. Unknown or refused tokens are never remembered.
- Issuing a token changes nothing another token depends on, so it does not bump.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .context import RequestContext
from .generation import SharedGeneration

log = logging.getLogger(__name__)

GENERATION_KEY = "identity:generation"
# Entries kept per process; past it the oldest half goes (a process serves a few users' tokens).
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    generation: int
    context: RequestContext
    expires_at: datetime
    kept_until: float  # time.monotonic()


_entries: dict[str, _Entry] = {}
_lock = threading.Lock()


_generation = SharedGeneration(
    GENERATION_KEY, forget_local=_entries.clear,
    unreadable="validating tokens from the database",
    refused="The change could not be announced to the token caches (the shared cache is "
            "unreachable), so it was not made. Try again when the cache is back.")


def current_generation() -> int | None:
    """The shared identity generation, or None when it cannot be known (then nothing is cached)."""
    return _generation.current()


def get(token_hash: str, generation: int | None) -> RequestContext | None:
    """The context the token validated to, if it was remembered under this generation and is
    still live."""
    if generation is None or settings.KUMO_TOKEN_CACHE_SECONDS <= 0:
        return None
    entry = _entries.get(token_hash)
    if entry is None:
        return None
    if (entry.generation != generation or entry.kept_until <= time.monotonic()
            or entry.expires_at <= timezone.now()):
        _entries.pop(token_hash, None)
        return None
    return entry.context


def put(token_hash: str, generation: int | None, context: RequestContext,
        expires_at: datetime) -> None:
    """Remember what the token validated to, tagged with the generation read before validating."""
    seconds = settings.KUMO_TOKEN_CACHE_SECONDS
    if generation is None or seconds <= 0:
        return
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            for key in list(_entries)[: MAX_ENTRIES // 2]:  # dicts keep insertion order
                _entries.pop(key, None)
        _entries[token_hash] = _Entry(generation, context, expires_at,
                                      time.monotonic() + seconds)


def before_change() -> None:
    """Something a validation depends on is about to change: make every process's entries stale.
    Raises if the shared cache cannot be reached, before the change is written, so the change is
    refused rather than applied while caches keep the old answer."""
    _generation.before_change()


def after_change() -> None:
    """The change is written: bump again once its transaction commits, so an entry refilled from
    the old rows meanwhile goes stale too."""
    _generation.after_change()


def clear_local() -> None:
    """Forget this process's entries (tests)."""
    _entries.clear()
