"""What counting for /metrics costs on the hot path (docs/observability.md, "Cost").

    .venv/bin/python -m bench.metrics_bench [--requests 3000] [--rounds 5]

1. The store's round trip: one pipelined HINCRBY/HINCRBYFLOAT call to the machine's Redis with
   the increments of one API request (2 fields) and of one scheduling task (8 fields), µs per call
   — what each request would wait with KUMO_METRICS_FLUSH_INTERVAL=0.
2. Whole requests through Django's handler in this process (no network, no server): GET /identity
   (the version document) with KUMO_METRICS_URL=off — the baseline — then sent to Redis at the
   end of each request (interval 0), then buffered and sent by the background thread (interval
   1 s, the default); rounds interleaved; the added µs per request and the ratio to the baseline.

Uses a Redis database claimed like the test stacks' (SET NX in database 0), flushed afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")

import django

django.setup()

from django.conf import settings
from django.test import Client

from cloud import metrics
from cloud.metrics import store
from cloud.metrics.families import (
    API_REQUEST_SECONDS,
    CLAIMS,
    HOSTS_REMOVED,
    SCHEDULER_DECISIONS,
    TASK_SECONDS,
    TASK_WAIT_SECONDS,
)

REDIS_BASE = os.environ.get("KUMO_IT_REDIS", "redis://127.0.0.1:6379")


def claim_db() -> int:
    registry = redis.Redis.from_url(f"{REDIS_BASE}/0")
    for number in range(1, 16):
        if registry.set(f"kumo:it:redis-db:{number}", "metrics-bench", nx=True, ex=600):
            return number
    raise RuntimeError("every Redis database 1-15 is claimed")


def release_db(number: int) -> None:
    redis.Redis.from_url(f"{REDIS_BASE}/{number}").flushdb()
    redis.Redis.from_url(f"{REDIS_BASE}/0").delete(f"kumo:it:redis-db:{number}")


def round_trips(calls: int) -> None:
    def request() -> None:
        with metrics.batch():
            metrics.observe(API_REQUEST_SECONDS, 0.004, "compute", "compute/v2.1/servers",
                            "GET", "200")

    def scheduling() -> None:
        with metrics.batch():
            metrics.observe(TASK_WAIT_SECONDS, 0.002, "scheduler")
            metrics.inc(CLAIMS, "instance")
            metrics.inc(HOSTS_REMOVED, "RamFilter", amount=3)
            metrics.observe(SCHEDULER_DECISIONS, 0.01, "placed")
            metrics.observe(TASK_SECONDS, 0.012, "scheduler", "scheduler.schedule_instance",
                            "success")

    for name, work in (("request (2 fields)", request), ("scheduling task (8 fields)", scheduling)):
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        times.sort()
        print(f"  {name:28} p50 {times[len(times) // 2] * 1e6:6.0f} µs   "
              f"p99 {times[int(len(times) * 0.99)] * 1e6:6.0f} µs")


def per_request(requests: int, rounds: int, redis_url: str) -> None:
    client = Client()
    client.get("/identity")  # warm: URL resolver, middleware chain
    modes = {"off": ("off", 0.0), "each request": (redis_url, 0.0),
             "buffered (default)": (redis_url, 1.0)}
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode, (url, interval) in modes.items():
            settings.KUMO_METRICS_URL = url
            settings.KUMO_METRICS_FLUSH_INTERVAL = interval
            started = time.perf_counter()
            for _ in range(requests):
                client.get("/identity")
            results[mode].append((time.perf_counter() - started) / requests)
    off = statistics.median(results["off"])
    print(f"  {'metrics off':28} {off * 1e6:6.0f} µs per request (median of {rounds} rounds)")
    for mode in ("each request", "buffered (default)"):
        on = statistics.median(results[mode])
        print(f"  {mode:28} {on * 1e6:6.0f} µs per request   added {(on - off) * 1e6:5.0f} µs"
              f"   ratio {on / off:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    number = claim_db()
    url = f"{REDIS_BASE}/{number}"
    try:
        settings.KUMO_METRICS_URL = url
        settings.KUMO_METRICS_FLUSH_INTERVAL = 0.0
        assert isinstance(store.current(), store.RedisStore)
        print(f"load average {os.getloadavg()[0]:.2f}; Redis {url}")
        print("One pipelined round trip per unit of work:")
        round_trips(args.requests)
        print("Whole requests through Django's handler, in process:")
        per_request(args.requests, args.rounds, url)
    finally:
        release_db(number)


if __name__ == "__main__":
    main()
