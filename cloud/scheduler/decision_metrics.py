"""Each scheduling decision, for /metrics: how long it took, how it ended, and when no host was
valid, which filter removed the last hosts left.

The task opens `timed()` around the manager; the manager says how the decision ended with one
call (`placed`, `waiting`, `no_valid_host`), and a decision that says nothing was `skipped` (the
instance was gone, placed already or changed meanwhile). Moves and evacuations choose hosts through
their own claim loop and are not counted here; their claims are (kumo_claims_total{kind="move"}).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cloud import metrics
from cloud.metrics.families import HOSTS_REMOVED, NO_VALID_HOST, SCHEDULER_DECISIONS

from .filters import FilterResult

PLACED, NO_VALID, WAITING, SKIPPED = "placed", "no_valid_host", "waiting", "skipped"
# The eliminating "filter" when no filter had a host to remove, or when claims, not filters, failed.
NO_HOSTS, CLAIM_RACE = "no_hosts", "claim_race"

_outcome: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kumo_scheduler_outcome", default=None
)


@contextmanager
def timed() -> Iterator[None]:
    """Time the decision made in the block and count it by the outcome the manager noted."""
    token = _outcome.set(SKIPPED)
    started = time.perf_counter()
    try:
        yield
    finally:
        outcome = _outcome.get() or SKIPPED
        _outcome.reset(token)
        metrics.observe(SCHEDULER_DECISIONS, time.perf_counter() - started, outcome)


def placed() -> None:
    _outcome.set(PLACED)


def placed_alongside(count: int, seconds: float) -> None:
    """`count` boots placed by another's decision (batch.py), each counted as a decision of
    `seconds`; their own tasks, finding them placed, then count as skipped."""
    for _ in range(count):
        metrics.observe(SCHEDULER_DECISIONS, seconds, PLACED)


def waiting(result: FilterResult) -> None:
    _outcome.set(WAITING)
    _count_removed(result)


def no_valid_host(result: FilterResult, lost_races: list[str]) -> None:
    _outcome.set(NO_VALID)
    _count_removed(result)
    metrics.inc(NO_VALID_HOST, eliminating_filter(result, lost_races))


def eliminating_filter(result: FilterResult, lost_races: list[str]) -> str:
    """The filter that removed the last hosts left; `claim_race` when hosts passed every filter
    but other requests claimed them first; `no_hosts` when there was no host to filter."""
    if lost_races:
        return CLAIM_RACE
    for name, hosts in reversed(result.removed):
        if hosts:
            return name
    return NO_HOSTS


def _count_removed(result: FilterResult) -> None:
    # Only for decisions that read every host: a placement tried a shortlist, whose removals
    # would count some hosts and not others.
    for name, hosts in result.removed:
        if hosts:
            metrics.inc(HOSTS_REMOVED, name, amount=len(hosts))
