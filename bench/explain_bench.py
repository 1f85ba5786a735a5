"""The scheduler's dry run (cloud/scheduler/explain.py) over N crafted hosts, in this process.

    .venv/bin/python -m bench.explain_bench [--hosts 1000] [--repeat 20]

Times `explain` alone: every configured filter and weigher, and the reason of every removed host
(what POST /os-kumo-placement-check adds to reading the host states, which the scheduler's own
bench times). A quarter of the hosts pass; the others are disabled, silent, in another zone or
out of RAM after their ratio, in turn. Prints p50 and max in ms, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
django.setup()

from cloud.scheduler.explain import explain
from cloud.scheduler.host_state import HostState, RequestSpec
from cloud.scheduler.loader import load_filters, load_weighers

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def crafted(count: int) -> list[HostState]:
    hosts = []
    for i in range(count):
        kind = i % 4
        hosts.append(HostState(
            host=f"c{i:05}", node=f"c{i:05}.local", node_id=i, vcpus=32, memory_mb=65536,
            local_gb=1000, memory_mb_used=(i * 97) % 30000 if kind == 0 else 65536,
            ram_allocation_ratio=1.5, disabled=kind == 1, read_at=NOW,
            last_seen_up=NOW - timedelta(seconds=600 if kind == 2 else 5),
            availability_zone="az2" if kind == 3 else "nova"))
    return hosts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    hosts = crafted(args.hosts)
    spec = RequestSpec(instance_uuid="", vcpus=2, memory_mb=40000, root_gb=20,
                       availability_zone="nova")
    filters, weighers = load_filters(), load_weighers()
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        answer = explain(spec, hosts, filters, weighers)
        times.append((time.perf_counter() - started) * 1000)
    print(f"explain over {args.hosts} hosts: {len(answer.passed)} pass; "
          f"p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
