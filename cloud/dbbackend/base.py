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

Statements are bound on the server and prepared once a connection has run them twice
(cloud/settings.py). A prepared statement keeps the plan PostgreSQL made for any parameter value
(after five runs, when it costs no more than those made for their values), with the table sizes of
the time it was made, until the tables are analyzed again. For a statement over tables that grow
or empty quickly that plan goes stale: the scheduler's take of the waiting boots
(cloud/scheduler/batch.py), planned while the claims table was nearly empty, compared each waiting
boot with every claim by a scan, 30 ms a batch at 2,000 claims where an index lookup takes
microseconds. Such a statement is named with `never_prepare` and is then planned for its values at
every run, as without server-side binding.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

# The texts of the statements never to prepare (never_prepare).
_UNPREPARED: set[str] = set()


def never_prepare(sql: str) -> str:
    """Have `sql` planned for its parameters' values at every run, never prepared; returns it."""
    _UNPREPARED.add(sql)
    return sql


class ServerBindingCursor(base.ServerBindingCursor):
    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                binary: bool | None = None) -> Any:
        if prepare is None and query in _UNPREPARED:
            prepare = False
        return super().execute(query, params, prepare=prepare, binary=binary)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        if params.get("cursor_factory") is base.ServerBindingCursor:
            params["cursor_factory"] = ServerBindingCursor
        return params

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
