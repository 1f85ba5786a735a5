"""Django's PostgreSQL backend, with a connection's health checked without a query.

Connections are kept between requests and tasks (CONN_MAX_AGE) and checked at their first use in
each (CONN_HEALTH_CHECKS), so one the database dropped is made anew instead of failing that request
or task (tests/integration/test_db_reconnect.py). Django checks with a `SELECT 1`: a round trip
before every request's and task's own first statement, a third of a show's and a sixth of a boot's
statements. An idle session is silent, though: PostgreSQL sends nothing unasked to a connection
that is not LISTENing, except when it ends it (a terminated backend, a shutdown or a restart send
their error and close the socket). So a connection with anything to read, or whose socket is
gone, is not usable; one with nothing to read is, as far as a `SELECT 1` could tell too. A
connection inside a transaction (never the case at a request's start) is checked as Django does.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.info.transaction_status != TransactionStatus.IDLE:
            return bool(super().is_usable())
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):  # the socket is gone
            return False
        return not readable
