"""A host without a credential is checked against the database once, not per message: the answer
"none" is remembered in each process under the shared credential generation, which every write of a
credential bumps, so a host that joins is refused unsigned messages at once, in every process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud import errors
from cloud.enrollment import host_credentials, join_tokens, report_senders, uncredentialed
from cloud.enrollment.models import HostCredential
from cloud.identity import generation
from compute_agent import messages as msg

pytestmark = pytest.mark.django_db


class _Request:
    """An unsigned message's request: no user_id, no signature."""

    properties: Mapping[str, Any] | None = None
    headers: Mapping[str, Any] | None = None


def _accepts(host: str) -> tuple[bool, int]:
    """Whether an unsigned report for `host` is accepted, and the SQL statements that took."""
    with CaptureQueriesContext(connection) as captured:
        accepted = report_senders.accepts(_Request(), msg.TASK_INSTANCE_EVENT, {}, host)
    return accepted, len(captured.captured_queries)


@pytest.fixture(autouse=True)
def _fresh_memo():
    uncredentialed.clear_local()
    yield
    uncredentialed.clear_local()


def test_a_host_without_credential_is_looked_up_once_not_per_message():
    assert _accepts("compute-memo-1") == (True, 1)
    assert _accepts("compute-memo-1") == (True, 0)
    assert _accepts("compute-memo-1") == (True, 0)


def test_a_host_that_joins_is_refused_unsigned_messages_at_once():
    assert _accepts("compute-memo-2") == (True, 1)

    host_credentials.join(join_tokens.issue("compute-memo-2").token)

    assert _accepts("compute-memo-2") == (False, 1)


def test_a_join_in_another_process_ends_this_ones_memo():
    """Another process's join reaches this one only through the shared generation: this
    process's memo is left as it was (no signal here), and the moved counter still voids it."""
    assert _accepts("compute-memo-3") == (True, 1)
    generation = uncredentialed.current_generation()

    # What another process's join leaves: the row (written without this process's signals) and
    # the counter bumped.
    HostCredential.objects.bulk_create([HostCredential(
        host="compute-memo-3", broker="redis", broker_user="", secret_salt="00",
        joined_at=timezone.now())])
    assert uncredentialed.known_without("compute-memo-3", generation)
    cache.incr(uncredentialed.GENERATION_KEY)

    assert _accepts("compute-memo-3") == (False, 1)


class _Away:
    """The shared cache, unreachable."""

    def __getattr__(self, name: str) -> object:
        def away(*args: object, **kwargs: object) -> None:
            raise ConnectionError("injected: Redis is away")
        return away


def test_without_the_shared_cache_every_message_asks_the_database(monkeypatch):
    monkeypatch.setattr(generation, "cache", _Away())  # the counter lives there
    assert _accepts("compute-memo-4") == (True, 1)
    assert _accepts("compute-memo-4") == (True, 1)


def test_a_join_the_conductors_cannot_be_told_of_is_refused(monkeypatch):
    token = join_tokens.issue("compute-memo-5").token
    monkeypatch.setattr(generation, "cache", _Away())  # the counter lives there
    with pytest.raises(errors.ServiceUnavailable):
        host_credentials.join(token)
    assert not HostCredential.objects.filter(host="compute-memo-5").exists()
