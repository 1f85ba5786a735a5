"""A kept connection's health is checked at its first use in a request or task without a query
(cloud/dbbackend): a silent session is usable; one whose backend ended is not, and is made anew."""

from __future__ import annotations

import time

import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend only"),
]


@pytest.fixture
def kept():
    """A connection of its own (as a worker's kept one), and its backend's pid."""
    wrapper = connections.create_connection("default")
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    yield wrapper, pid
    wrapper.close()


def _last_statement(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def test_a_silent_session_is_usable_without_a_round_trip(kept) -> None:
    wrapper, pid = kept
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 'the last thing asked'")

    assert wrapper.is_usable()
    assert "the last thing asked" in _last_statement(pid)  # no SELECT 1 went to the server


def test_a_session_the_server_ended_is_not_usable_and_is_made_anew(kept) -> None:
    wrapper, pid = kept
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while wrapper.is_usable() and time.monotonic() < deadline:
        time.sleep(0.02)  # the backend's farewell reaches the socket a moment later

    assert not wrapper.is_usable()
    wrapper.health_check_enabled, wrapper.health_check_done = True, False
    wrapper.close_if_health_check_failed()
    with wrapper.cursor() as cursor:  # a new session, not an error
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
