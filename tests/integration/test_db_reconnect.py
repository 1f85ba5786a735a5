"""Every process keeps its database connections between requests and tasks (CONN_MAX_AGE; the
workers too: cloud/celery.py), so a connection the database dropped (a PostgreSQL restart, a
failover, an idle timeout) must be noticed before it is used: no request answers 500 and no task
fails for it. Here the database ends every session of the stack's processes at once, and the next
requests and boots must go through as if nothing happened."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.stack import PG_ADMIN_URL, AgentSpec, Stack, qcow2_bytes

V = "/compute/v2.1"


@pytest.fixture(scope="module")
def stack():
    live = Stack("db-reconnect", agents=[AgentSpec("compute-a")], schedulers=1)
    with live.running():
        yield live


def _boot(api, image_id: str, name: str) -> dict:
    body = {"server": {"name": name, "imageRef": image_id, "flavorRef": "1", "networks": "none"}}
    response = api.post(f"{V}/servers", body)
    assert response.status_code == 202, response.text
    return api.wait_for(response.json()["server"]["id"], {"ACTIVE", "ERROR"}, timeout=60)


def _end_every_session(db_name: str) -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()", (db_name,)).fetchall()
        ended = [pid for pid, signalled in rows if signalled]
        # pg_terminate_backend only signals: a backend still there answers a health check and
        # then dies under the next query, a race a restarted database never poses (its
        # sessions are gone). Wait until they are.
        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                           (ended,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the sessions did not end"
            time.sleep(0.05)
    return len(ended)


def _log_tail(stack: Stack, name: str, offset: int) -> str:
    return (stack.workdir / f"{name}.log").read_text(errors="replace")[offset:]


def test_sessions_ended_by_the_database_cost_no_request_and_no_task(stack):
    api = stack.client()
    image_id = api.upload_image("reconnect", qcow2_bytes())
    # Every process has used (and kept) its connections: a boot goes through them all.
    first = _boot(api, image_id, "before")
    assert first["status"] == "ACTIVE", first.get("fault")
    logs = ["web", "scheduler0", "conductor"]
    offsets = {name: len(_log_tail(stack, name, 0)) for name in logs}

    assert _end_every_session(stack.db_name) >= 3  # the web's, the scheduler's, the conductor's

    # The web's threads each held a dead connection: none of them may answer 500 for it.
    for _ in range(8):
        response = api.get(f"{V}/servers/detail")
        assert response.status_code == 200, response.text
    # The workers' threads too: each boot's tasks land on threads holding dead connections.
    for i in range(4):
        server = _boot(api, image_id, f"after-{i}")
        assert server["status"] == "ACTIVE", server.get("fault")
    for name in logs:
        tail = _log_tail(stack, name, offsets[name])
        assert "OperationalError" not in tail, f"{name}: {tail[-2000:]}"
        assert "Traceback" not in tail, f"{name}: {tail[-2000:]}"
