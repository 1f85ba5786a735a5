"""What guests' statistics cost, per host report of N guests, beside the heartbeat in the same run.

    .venv/bin/python -m bench.guest_stats_bench [--guests 250] [--reps 20]

Agent side (no Django): one `guest_stats()` read of N running guests on libvirt's test driver (the
per-domain path: info, XML, per-device calls) against one `list_domains()` (what the heartbeat
reads); the conversion of N qemu-shaped bulk records (the qemu path without libvirt's own call,
which this machine's qemu:///system cannot host 250 guests for); the report's JSON size and its
HMAC signature.

Conductor side (a PostgreSQL database of its own, the machine's Redis under a key prefix of its
own): `guest_stats.record()` of an N-guest report (one query, one pipelined Redis round trip)
against `host_reports.apply_host_report()` of the same host's heartbeat with the same N domains;
and the Redis memory one guest's full history takes. Prints medians and ratios; the database and
keys are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

PG_ADMIN_URL = os.environ.get("KUMO_IT_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
HOST = "bench-stats"


def _median_ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _qemu_record(i: int) -> dict:
    return {
        "state.state": 1, "state.reason": 1, "cpu.time": 10**9 * i, "cpu.user": 1, "cpu.system": 1,
        "balloon.current": 2 * 2**20, "balloon.maximum": 2 * 2**20, "balloon.rss": 2**20,
        "vcpu.current": 2, "vcpu.maximum": 2, "vcpu.0.state": 1, "vcpu.0.time": 10**9,
        "vcpu.1.state": 1, "vcpu.1.time": 10**9,
        "net.count": 1, "net.0.name": f"tap{i:08x}-00", "net.0.rx.bytes": 10**6,
        "net.0.rx.pkts": 1000, "net.0.rx.errs": 0, "net.0.rx.drop": 0, "net.0.tx.bytes": 10**6,
        "net.0.tx.pkts": 1000, "net.0.tx.errs": 0, "net.0.tx.drop": 0,
        "block.count": 2, "block.0.name": "vda", "block.0.rd.reqs": 10**4,
        "block.0.rd.bytes": 10**8, "block.0.wr.reqs": 10**4, "block.0.wr.bytes": 10**8,
        "block.1.name": "hdd", "block.1.rd.reqs": 6, "block.1.rd.bytes": 77874,
        "block.1.wr.reqs": 0, "block.1.wr.bytes": 0,
    }


def agent_side(guests: int, reps: int) -> tuple[dict, list]:
    from compute_agent import messages as msg
    from compute_agent.drivers.libvirt import LibvirtDriver
    from compute_agent.drivers.libvirt.stats import from_bulk_record

    with tempfile.TemporaryDirectory() as tmp:
        driver = LibvirtDriver("test:///default", instances_dir=tmp)
        try:
            for i in range(guests):
                driver.spawn(msg.SpawnRequest(
                    request_id="req-bench", instance_uuid=str(uuid.uuid4()), name=f"g{i}",
                    hostname=f"g{i}", vcpus=1, memory_mb=128, root_gb=1))
            read = _median_ms(driver.guest_stats, reps)
            listed = _median_ms(driver.list_domains, reps)
        finally:
            driver.close()
    records = [(f"{uuid.uuid4()}", _qemu_record(i)) for i in range(guests)]
    macs = {rec["net.0.name"]: "fa:16:3e:00:00:01" for _, rec in records}
    convert = _median_ms(lambda: [from_bulk_record(u, r, macs) for u, r in records], reps)
    stats = [from_bulk_record(u, r, macs) for u, r in records]
    report = msg.GuestStatsReport(host=HOST, collected_at=time.time(), interval=10.0,
                                  guests=stats)
    payload = report.to_dict()
    size = len(json.dumps(payload, separators=(",", ":")))
    sign = _median_ms(lambda: msg.report_signature("s" * 32, HOST, msg.TASK_GUEST_STATS,
                                                   report.to_dict()), reps)
    parse = _median_ms(lambda: msg.GuestStatsReport.from_dict(json.loads(json.dumps(payload))),
                       reps)
    return {
        "test driver guest_stats() ms": read,
        "test driver list_domains() ms (heartbeat baseline)": listed,
        "ratio": read / listed,
        "qemu-shaped records converted ms": convert,
        "report bytes (JSON)": size,
        "bytes per guest": size / guests,
        "to_dict + HMAC ms": sign,
        "JSON round trip + from_dict ms (the conductor's parse)": parse,
    }, stats


def conductor_side(stats: list, reps: int) -> dict:
    import psycopg

    db_name = f"kumo_bench_stats_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        os.environ["DATABASE_URL"] = f"{base}/{db_name}"
        os.environ["CELERY_BROKER_URL"] = "memory://"
        os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(40))
        os.environ.setdefault("KUMO_VAR_DIR", f"/tmp/{db_name}")
        os.environ["KUMO_GUEST_STATS_PREFIX"] = f"kumo-bench:{db_name}:"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cloud.settings")
        import django

        django.setup()
        return _conductor_figures(stats, reps)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _conductor_figures(stats: list, reps: int) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from cloud.compute import guest_stats
    from cloud.compute.models import Instance
    from cloud.conductor import host_reports
    from cloud.identity.models import Project, User
    from compute_agent import messages as msg

    call_command("migrate", "--noinput", verbosity=0)
    project = Project.objects.get_or_create(name="bench")[0]
    user = User.objects.get_or_create(name="bench")[0]
    Instance.objects.bulk_create([
        Instance(uuid=s.uuid, display_name=f"g{i}", project=project, user=user, vcpus=2,
                 memory_mb=2048, root_gb=20, vm_state="active", task_state=None,
                 power_state="running", host=HOST, node=HOST)
        for i, s in enumerate(stats)
    ])
    heartbeat = msg.HostReport(
        host=HOST, hypervisor_type="QEMU", hypervisor_version=7002000,
        hypervisor_hostname=HOST, host_ip="192.0.2.1", vcpus=64, memory_mb=512 * 1024,
        local_gb=2000, domains=[msg.DomainState(uuid=s.uuid, power_state="running")
                                for s in stats])
    host_reports.apply_host_report(heartbeat)
    at = [time.time()]

    def record() -> None:
        at[0] += 10
        guest_stats.record(msg.GuestStatsReport(host=HOST, collected_at=at[0], interval=10.0,
                                                guests=stats))

    try:
        recorded = _median_ms(record, reps)
        applied = _median_ms(lambda: host_reports.apply_host_report(heartbeat), reps)
        for _ in range(settings.KUMO_GUEST_STATS_HISTORY):
            record()
        client = guest_stats._redis()
        per_guest = client.memory_usage(f"{settings.KUMO_GUEST_STATS_PREFIX}{stats[0].uuid}")
    finally:
        for key in guest_stats._redis().scan_iter(match=f"{settings.KUMO_GUEST_STATS_PREFIX}*"):
            guest_stats._redis().delete(key)
    return {
        "record() ms": recorded,
        "apply_host_report() ms (heartbeat baseline)": applied,
        "ratio": recorded / applied,
        f"Redis bytes per guest ({settings.KUMO_GUEST_STATS_HISTORY} samples)": per_guest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=250)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    load = os.getloadavg()
    agent, stats = agent_side(args.guests, args.reps)
    conductor = conductor_side(stats, args.reps)
    print(f"{args.guests} guests, median of {args.reps}; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for title, figures in (("agent", agent), ("conductor", conductor)):
        print(f"\n{title}")
        for name, value in figures.items():
            print(f"  {name:55} {value:12.2f}" if isinstance(value, float)
                  else f"  {name:55} {value:12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
