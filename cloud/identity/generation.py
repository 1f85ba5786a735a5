"""A counter in the shared cache that tells every process when what it remembers went stale.

Used by the token cache (token_cache.py: what a token validated to) and by the conductors' memo of
hosts without a credential (cloud/enrollment/uncredentialed.py). A process tags what it remembers
with the counter read *before* asking the database, and uses it only while the counter has not
moved. A change bumps it twice: just before it is written (raising, so the change is refused, when
the shared cache cannot be reached) and again once its transaction commits, so an entry refilled
from the not yet committed rows in between is stale too. A counter that is missing (first use,
evicted) starts again at a random value, never 0, so nothing tagged with an old one can match by
chance; one that cannot be read is None, and callers then remember nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction

from cloud import errors

log = logging.getLogger(__name__)


class SharedGeneration:
    def __init__(self, key: str, *, forget_local: Callable[[], None], unreadable: str,
                 refused: str) -> None:
        self.key = key
        self._forget_local = forget_local
        self._unreadable = unreadable  # logged when it cannot be read: what callers do instead
        self._refused = refused  # the 503's text when a change cannot bump it

    def current(self) -> int | None:
        """The counter, or None when it cannot be known."""
        try:
            value = cache.get(self.key)
            if value is None:
                cache.add(self.key, secrets.randbelow(2**62) + 1, timeout=None)
                value = cache.get(self.key)
            return None if value is None else int(value)
        except Exception:  # the shared cache is away
            log.warning("%s unreadable; %s", self.key, self._unreadable, exc_info=True)
            return None

    def before_change(self) -> None:
        """Something remembered is about to go stale: bump, or refuse the change (raises)."""
        self._forget_local()
        try:
            self._increment()
        except Exception as exc:
            log.exception("could not bump %s; the change is refused", self.key)
            raise errors.ServiceUnavailable(self._refused) from exc

    def after_change(self) -> None:
        """The change is written: bump again once its transaction commits (at once outside one)."""
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(self._increment_after_commit)
        else:
            self._increment_after_commit()

    def _increment(self) -> None:
        try:
            cache.incr(self.key)
        except ValueError:  # missing: a new random start is as good as a bump
            cache.add(self.key, secrets.randbelow(2**62) + 1, timeout=None)
            cache.incr(self.key)

    def _increment_after_commit(self) -> None:
        self._forget_local()
        try:
            self._increment()
        except Exception:  # committed already; the first bump made the old entries stale
            log.exception("could not bump %s after commit", self.key)
