"""Scheduler decisions per second with claims, at N compute hosts, in a PostgreSQL database of its own.

    .venv/bin/python -m bench.scheduler_bench [--hosts 1000] [--decisions 500] [--threads 2]

What is timed is the scheduler's own service function (cloud.scheduler.manager.schedule_instance,
what a schedule_instance task calls): read the instance, filter and weigh the hosts, claim the
best one in SQL, record the event and write the spawn message to the outbox. A task may place the
boots waiting alongside its own in the same transaction (cloud/scheduler/batch.py); a decision's
time is then that of the task that made it, and a task that finds its instance placed already
made none (its time shows only in the p99 of a task, also printed). Only the broker is
left out: Celery publishes to its in-memory transport. The instances boot from no image and have
no ports or volumes: a real boot's spawn message also reads its ports (one more query, and what
describing them costs) and issues an image token, which this figure leaves out.

The hosts are fake compute nodes as real ones report themselves (a CPU description, a list of
domains): most are up with room, and some are full, disabled, silent or in another zone, so the
filters have work to do. T threads decide at once, as the scheduler worker does (the Procfile's
`--pool threads -c 4`), so their claims race for the same best hosts; --threads 1 shows one
decision after another.

At the end it checks that nothing is overcommitted: on every node, the sum of its claims is at most
capacity × allocation ratio, and the node's used counters equal that sum. Prints decisions/s, p50
and p99 of one decision (also kept in artifacts/bench/scheduler_bench.json for bench/report.py),
the load average, and an in-run baseline: one durable commit (an UPDATE
and its COMMIT), since a decision commits once (its claim with its event and outbox row; the
rows of handed-over messages are deleted in batches by a thread, cloud/outbox/relay.py) and the
disk's flush time bounds what one thread can do. The check also wants no outbox row left a second
after the last decision. The database is dropped unless --keep-db.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

ARTIFACTS = Path(os.environ.get("KUMO_ARTIFACTS_DIR", Path(__file__).parents[1] / "artifacts")) / "bench"
PG_ADMIN_URL = os.environ.get("KUMO_IT_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# A flavor of the common size: 2 vCPUs, 4 GiB, 20 GB.
FLAVOR = {"vcpus": 2, "memory_mb": 4096, "root_gb": 20}
CPU_INFO = {
    "arch": "x86_64", "model": "Cascadelake-Server", "vendor": "Intel",
    "topology": {"sockets": 2, "cores": 16, "threads": 2},
    "features": ["pge", "avx", "avx2", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
                 "clflushopt", "clwb", "xsavec", "xgetbv1", "xsaves", "pku", "ospke", "md-clear",
                 "stibp", "arch-capabilities", "ssbd", "xsaveopt", "rdrand", "f16c", "hypervisor",
                 "erms", "invpcid", "rtm", "mpx", "rdseed", "adx", "smap", "vmx", "pcid", "x2apic"],
}


def _setup_django(db_name: str) -> None:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{db_name}"
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
    os.environ.setdefault("KUMO_VAR_DIR", f"/tmp/{db_name}")
    # A long run must not see its hosts go silent: they report "now" once, before the timing.
    os.environ["KUMO_SERVICE_DOWN_TIME"] = "3600"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
    import django

    django.setup()
    # One line per decision on the terminal would time the terminal; warnings still show.
    logging.getLogger("cloud").setLevel(logging.WARNING)


def _populate(hosts: int, decisions: int) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from cloud.compute import states
    from cloud.compute.models import (
        COMPUTE_BINARY,
        Aggregate,
        AggregateHost,
        ComputeNode,
        Instance,
        InstanceAction,
        Service,
    )
    from cloud.identity.models import Project, User

    call_command("migrate", "--noinput", verbosity=0)
    now = timezone.now()
    services, nodes = [], []
    for i in range(hosts):
        name = f"bench-{i:05d}"
        services.append(Service(
            host=name, binary=COMPUTE_BINARY, topic=f"compute.{name}",
            disabled=i % 50 == 1,  # 2% disabled
            last_seen_up=now - timedelta(hours=2) if i % 50 == 2 else now,  # 2% silent
        ))
    Service.objects.bulk_create(services, batch_size=1000)
    by_host = {s.host: s for s in Service.objects.filter(binary=COMPUTE_BINARY)}
    for i in range(hosts):
        name = f"bench-{i:05d}"
        memory_mb = (256 if i % 3 else 512) * 1024
        full = i % 10 == 3  # 10% have no RAM left
        nodes.append(ComputeNode(
            service=by_host[name], host=name, hypervisor_hostname=f"{name}.local",
            vcpus=64, memory_mb=memory_mb, local_gb=2000, cpu_allocation_ratio=4.0,
            ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
            memory_mb_used=memory_mb if full else 0,
            cpu_info=CPU_INFO,
            # What a host reports after each boot: its domains (40 guests each here).
            domains=[{"uuid": str(uuid.uuid4()), "power_state": "running"} for _ in range(40)],
            migration_uri=f"qemu+tcp://{name}/system", network_driver="linuxbridge",
            load_average=[0.5, 0.4, 0.3],
        ))
    ComputeNode.objects.bulk_create(nodes, batch_size=500)
    # 5% of the hosts are in a zone of their own; requests name no zone.
    zoned = Aggregate.objects.create(name="edge", availability_zone="edge")
    AggregateHost.objects.bulk_create(
        [AggregateHost(aggregate=zoned, host=f"bench-{i:05d}") for i in range(0, hosts, 20)])

    project = Project.objects.get_or_create(name="bench")[0]
    user = User.objects.get_or_create(name="bench")[0]
    instances = [
        Instance(display_name=f"vm-{i}", project=project, user=user,
                 task_state=states.SCHEDULING, **FLAVOR)
        for i in range(decisions)
    ]
    Instance.objects.bulk_create(instances, batch_size=1000)
    InstanceAction.objects.bulk_create([
        InstanceAction(instance=inst, action="create", request_id=f"req-{i}",
                       user_id=user.pk, project_id=project.pk)
        for i, inst in enumerate(instances)
    ], batch_size=1000)
    # Fresh statistics, as autovacuum would have them for a cloud that did not just appear.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _decide(uuids: list[str]) -> list[tuple[float, int, float]]:
    """Run each instance's schedule task in turn, as one scheduler thread does: the time of each
    and how many instances it placed (a task may place the boots waiting alongside its own,
    cloud/scheduler/batch.py, and then theirs find nothing to do), and when it started."""
    from django.db import connection

    from cloud import metrics
    from cloud.scheduler.manager import schedule_instance

    samples = []
    try:
        for instance_uuid in uuids:
            start = time.perf_counter()
            # As in the worker, whose task signals gather each task's counts into one batch.
            with metrics.batch():
                placed = schedule_instance(instance_uuid, f"req-{instance_uuid[:8]}",
                                           wait_for_hosts=False)
            samples.append((time.perf_counter() - start, placed, start))
    finally:
        connection.close()
    return samples


def _warm_batches(settings: Any) -> int:
    """Batches each thread runs before the timed ones: enough for its connection to have
    prepared every statement of a batch."""
    options = settings.DATABASES["default"].get("OPTIONS", {})
    return int(options.get("prepare_threshold") or 0) + 1


def _connect(all_connected: threading.Barrier, warm_up: list[str]) -> None:
    """Open this thread's database connection and make a decision of the batch size on it for
    each boot of `warm_up` (not counted), then wait for the other threads to do the same."""
    _decide(warm_up)
    all_connected.wait()


def _commit_baseline(repeat: int = 50) -> float:
    """Seconds for one durable commit of a one-row UPDATE: the disk's flush, in this run."""
    from django.db import transaction

    from cloud.compute.models import Aggregate

    row = Aggregate.objects.first()
    start = time.perf_counter()
    for _ in range(repeat):
        with transaction.atomic():
            Aggregate.objects.filter(pk=row.pk).update(metadata={})
    return (time.perf_counter() - start) / repeat


def _check(decisions: int) -> list[str]:
    """Every broken promise: a node whose claims exceed capacity × ratio or whose counters
    differ from its claims, and an instance not placed."""
    from django.db.models import Count, Sum

    from cloud.compute import states
    from cloud.compute.models import Allocation, ComputeNode, Instance
    from cloud.outbox.models import OutboxMessage

    problems = []
    sums = {row["node_id"]: row for row in Allocation.objects.values("node_id").annotate(
        vcpus=Sum("vcpus"), memory_mb=Sum("memory_mb"), disk_gb=Sum("disk_gb"), n=Count("id"))}
    for node in ComputeNode.objects.only(
            "host", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
            "local_gb_used", "cpu_allocation_ratio", "ram_allocation_ratio",
            "disk_allocation_ratio"):
        row = sums.get(node.pk, {"vcpus": 0, "memory_mb": 0, "disk_gb": 0})
        # The bench's "full" hosts start with memory used and no claim: count claims on top.
        base_ram = node.memory_mb_used - row["memory_mb"]
        if row["vcpus"] > node.vcpus * node.cpu_allocation_ratio:
            problems.append(f"{node.host}: {row['vcpus']} vCPUs claimed")
        if row["memory_mb"] + base_ram > node.memory_mb * node.ram_allocation_ratio:
            problems.append(f"{node.host}: {row['memory_mb'] + base_ram} MB claimed")
        if row["disk_gb"] > node.local_gb * node.disk_allocation_ratio:
            problems.append(f"{node.host}: {row['disk_gb']} GB claimed")
        if (node.vcpus_used, node.local_gb_used) != (row["vcpus"], row["disk_gb"]) or \
                base_ram not in (0, node.memory_mb):
            problems.append(f"{node.host}: counters differ from its claims")
    placed = Instance.objects.filter(task_state=states.SPAWNING, host__isnull=False).count()
    if placed != decisions:
        problems.append(f"{decisions - placed} of {decisions} instances not placed")
    if Allocation.objects.count() != placed:
        problems.append(f"{Allocation.objects.count()} claims for {placed} placed instances")
    # Every spawn was handed to the broker, and its outbox row deleted by the process's thread.
    time.sleep(1)
    if OutboxMessage.objects.count():
        problems.append(f"{OutboxMessage.objects.count()} outbox rows left behind")
    return problems


def _record(hosts: int, figures: dict) -> None:
    """Keep this run's figures for bench/report.py, one entry per number of hosts."""
    out = ARTIFACTS / "scheduler_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(out.read_text()) if out.exists() else {}
    kept[str(hosts)] = figures
    out.write_text(json.dumps(kept, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None,
                        help="KUMO_SCHEDULER_BATCH: boots one task may place (default: the setting's)")
    parser.add_argument("--budget", type=float, default=None,
                        help="KUMO_SCHEDULER_BATCH_BUDGET_MS: the time a batch aims at, which "
                        "sets how many boots it takes (0: always --batch; default: the setting's)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    db_name = f"kumo_bench_sched_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        _setup_django(db_name)
        from django.conf import settings
        from django.db import connection

        from cloud.celery import freeze_startup_heap
        from cloud.compute.models import Instance
        from cloud.scheduler import batch

        if args.batch is not None:
            settings.KUMO_SCHEDULER_BATCH = args.batch
        if args.budget is not None:
            settings.KUMO_SCHEDULER_BATCH_BUDGET_MS = args.budget
        # The threads' warm-up decisions (below) place this many more, not counted.
        warm = args.threads * batch.take_size() * _warm_batches(settings)
        start = time.perf_counter()
        _populate(args.hosts, args.decisions + warm)
        print(f"{args.hosts} hosts and {args.decisions} (+ {warm} to warm up) instances to place, "
              f"set up in {time.perf_counter() - start:.1f} s")
        # As a worker does once it is ready, before its first task (cloud/celery.py): what is
        # loaded by now is out of the collector's reach. Without it a full collection in the
        # timed part stopped both threads for 30-70 ms and made the p99.
        freeze_startup_heap()
        uuids = [str(u) for u in Instance.objects.order_by("display_name")
                 .values_list("uuid", flat=True)]
        # One warm-up decision (imports, first connection), not counted, and of one instance.
        from django.test.utils import override_settings

        with override_settings(KUMO_SCHEDULER_BATCH=1):
            _decide(uuids[:1])
        uuids = uuids[1:]
        commit = _commit_baseline()
        connection.close()
        # Each thread first opens its connection and makes decisions of the batch size on it,
        # not counted, as a scheduler worker that has been running does not pay for them: its
        # threads keep their connections (CONN_MAX_AGE), on which PostgreSQL prepared the batch's
        # statements (cloud/settings.py), and Celery's producer pool is filled. A statement is
        # prepared at its (prepare_threshold + 1)th run, so that many batches each; with one,
        # the first two timed batches of each thread still ran their statements unprepared and
        # took 50-80 ms, about 2% of 1,000 decisions: the p99. (Unwarmed at all, 100-160 ms.)
        # Each warm-up task's own boot is the newest of its share, and the others it takes are
        # the oldest waiting, as the batch takes them: every warm-up task places a whole batch,
        # and the timed tasks of those find them placed and make no decision.
        shares = [uuids[i::args.threads] for i in range(args.threads)]
        warm_up = [[share.pop() for _ in range(_warm_batches(settings))] for share in shares]
        with ThreadPoolExecutor(args.threads) as pool:
            # (Each waits at the barrier for all: one call per thread.)
            list(pool.map(_connect, [threading.Barrier(args.threads)] * args.threads, warm_up))
            # The batches time themselves from here on.
            batch.time_per_boot.reset()
            load_before = os.getloadavg()[0]
            cpu = time.process_time()
            start = time.perf_counter()
            calls = [s for part in pool.map(_decide, shares) for s in part]
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        # A decision takes as long as the task that made it: a task that placed n instances
        # counts n times; one that found its instance placed already made no decision.
        samples = sorted(seconds for seconds, placed, _ in calls for _ in range(placed or 0))
        decisions = len(samples)
        p50 = statistics.median(samples) * 1000
        p99 = samples[min(decisions - 1, int(decisions * 0.99))] * 1000
        tasks = sorted(seconds for seconds, _, _ in calls)
        task_p99 = tasks[min(len(tasks) - 1, int(len(tasks) * 0.99))] * 1000
        print(f"scheduler at {args.hosts} hosts, {args.threads} thread(s): "
              f"{decisions / wall:.1f} decisions/s with claims, p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms (load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}; "
              f"baseline: one durable commit {commit * 1000:.1f} ms)")
        print(f"{len(calls)} tasks placed {decisions} instances, "
              f"{decisions / max(1, sum(1 for _, p, _ in calls if p)):.1f} per task that placed any; "
              f"p99 of a task {task_p99:.1f} ms (batches of at most {batch.batch_size()}, "
              f"budget {getattr(settings, 'KUMO_SCHEDULER_BATCH_BUDGET_MS', batch.DEFAULT_BUDGET_MS)}"
              f" ms, {batch.time_per_boot.seconds * 1000:.2f} ms per boot measured at the end)")
        # Where the slowest decisions come from: when their tasks started, how long they took,
        # how many each placed.
        slowest = sorted(((sec, n, at - start) for sec, n, at in calls if n), reverse=True)[:8]
        print("slowest tasks that placed any (started at s: ms, placed): " + ", ".join(
            f"{at:.2f}: {sec * 1000:.0f}, {n}" for sec, n, at in slowest))
        print(f"scheduler CPU per decision (this process, not the database's): "
              f"{cpu / decisions * 1000:.2f} ms")
        problems = _check(args.decisions + warm)
        _record(args.hosts, {
            "threads": args.threads, "batch": batch.batch_size(),
            "budget_ms": getattr(settings, "KUMO_SCHEDULER_BATCH_BUDGET_MS",
                                 batch.DEFAULT_BUDGET_MS),
            "decisions_per_s": decisions / wall, "p50_ms": p50,
            "p99_ms": p99, "task_p99_ms": task_p99, "cpu_ms_per_decision": cpu / decisions * 1000,
            "commit_baseline_ms": commit * 1000, "load_average": load_before,
            "zero_overcommit": not problems,
        })
        if problems:
            print("OVERCOMMIT OR LOST CLAIMS:\n  " + "\n  ".join(problems[:20]))
            return 1
        print("zero overcommit: every node's claims fit capacity x ratio and match its counters")
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep_db:
            print(f"database kept: {db_name}")
        else:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
