"""Reading what the stack did, for assertions: the database only as a witness, never as a driver."""

from __future__ import annotations

import time

import psycopg

from tests.stack import Stack


def node_rows(stack: Stack) -> dict[str, dict]:
    with psycopg.connect(stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT host, memory_mb, memory_mb_used, vcpus, vcpus_used, domains "
            "FROM compute_computenode"
        ).fetchall()
    return {
        host: {"memory_mb": mem, "memory_mb_used": used, "vcpus": vcpus, "vcpus_used": vused,
               "domains": {d["uuid"] for d in domains}}
        for host, mem, used, vcpus, vused, domains in rows
    }


def allocation_count(stack: Stack) -> int:
    with psycopg.connect(stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")) as conn:
        return conn.execute("SELECT count(*) FROM scheduler_allocation").fetchone()[0]


def wait_until(predicate, timeout: float = 30, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")
