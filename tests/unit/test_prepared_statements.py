"""Statements are bound on the server and prepared once a connection has run them twice
(cloud/settings.py): PostgreSQL then executes the plan it kept instead of parsing and planning the
statement again, which is most of what a short statement costs it."""

from __future__ import annotations

import pytest
from django.db import connection

from cloud.compute.models import Flavor

pytestmark = pytest.mark.django_db


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares; SQLite does not")
def test_a_statement_a_connection_runs_again_is_prepared_on_the_server() -> None:
    for flavorid in ("a", "b", "c"):
        list(Flavor.objects.filter(flavorid=flavorid))

    prepared = [s for s in _prepared() if '"compute_flavor"' in s]
    assert prepared, "the flavor read was not prepared"
    assert "$1" in prepared[0]  # its parameter bound by the server, not written into the text
