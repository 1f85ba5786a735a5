"""What the admin System page's data costs a web worker (docs/observability.md, System page).

    .venv/bin/python -m bench.system_page_bench [--calls 200]

With the counts and the history in a Redis database of its own (claimed like the test stacks',
SET NX in database 0, flushed afterwards): the metrics store seeded as a busy cloud would leave it
(12 API families × 20 routes × 5 statuses, every latency bucket, 8 filters), a full history of
KEEP_SECONDS / STEP_SECONDS samples in the cache, and 50 compute hosts in a database of its own.
Then, in ms per call: taking one sample (what the one worker that claims a slot pays: every
recorded family read back, the queue depths from the in-memory broker), and answering the page's
fetch from the kept samples (what every other fetch pays: MGET of the window, the rates and
quantiles, the hosts' query, JSON encoding).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import psycopg
import redis

REDIS_BASE = os.environ.get("KUMO_IT_REDIS", "redis://127.0.0.1:6379")
PG_ADMIN_URL = os.environ.get("KUMO_IT_PG", "postgres://postgres@127.0.0.1:5432/postgres")
DB_NAME = f"kumo_bench_system_{os.getpid()}"


def claim_db() -> int:
    registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
    for number in range(1, 16):
        if registry.set(f"kumo:it:redis-db:{number}", "system-page-bench", nx=True, ex=600):
            return number
    raise RuntimeError("every Redis database 1-15 is claimed")


def release_db(number: int) -> None:
    redis.Redis.from_url(f"{REDIS_BASE}/{number}").flushdb()
    redis.Redis.from_url(f"{REDIS_BASE}/0").delete(f"kumo:it:redis-db:{number}")


def timed(fn, calls: int) -> tuple[float, float]:
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    number = claim_db()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        url = f"{REDIS_BASE}/{number}"
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "cloud.settings", "KUMO_METRICS_URL": url,
            "KUMO_METRICS_FLUSH_INTERVAL": "0", "KUMO_CACHE_URL": url,
            "CELERY_BROKER_URL": "memory://",
            "DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{DB_NAME}",
        })
        run(args.calls)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        release_db(number)


def run(calls: int) -> None:
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    from cloud import metrics
    from cloud.dashboard import system
    from cloud.metrics import families
    from tests.factories import make_node

    call_command("migrate", "--noinput", verbosity=0)
    for i in range(50):
        make_node(f"compute-{i:02d}")
    with metrics.batch():
        for api in range(12):
            for route in range(20):
                for status in ("200", "202", "400", "404", "500"):
                    for seconds in families.LATENCY_BUCKETS:
                        metrics.observe(families.API_REQUEST_SECONDS, seconds, f"api{api}",
                                        f"route{route}", "GET", status)
        for name in ("RamFilter", "DiskFilter", "ComputeFilter", "AvailabilityZoneFilter",
                     "ServerGroupAntiAffinityFilter", "AggregateInstanceExtraSpecsFilter",
                     "no_hosts", "claim_race"):
            metrics.inc(families.NO_VALID_HOST, name)
    now = time.time()
    slots = system.KEEP_SECONDS // system.STEP_SECONDS
    sample = system.read_sample(now)
    for back in range(slots, 0, -1):
        at = now - back * system.STEP_SECONDS
        cache.set(system._key(int(at // system.STEP_SECONDS)), {**sample, "at": at},
                  timeout=system.KEEP_SECONDS)
    cache.add(f"dashboard:system:claim:{int(now // system.STEP_SECONDS)}", 1, timeout=600)

    load = os.getloadavg()[0]
    p50, p95 = timed(lambda: system.read_sample(now), calls)
    print(f"taking one sample (one worker per {system.STEP_SECONDS} s slot): "
          f"p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    size = len(json.dumps(system.snapshot(now)))
    p50, p95 = timed(lambda: json.dumps(system.snapshot(now)), calls)
    print(f"answering a fetch from {slots} kept samples, 50 hosts (every fetch): "
          f"p50 {p50:.2f} ms, p95 {p95:.2f} ms, {size / 1024:.0f} KiB of JSON")
    print(f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
