"""How fast the web process serves the API under each way of putting HTTP and websockets on one
origin — the measurement behind cloud/asgi.py's design (docs/architecture.md, "The web process").

    .venv/bin/python -m bench.web_bench [--seconds 10] [--clients 16]

Each setup runs the same gunicorn (2 workers) on a fresh PostgreSQL database and answers
authenticated GET /compute/v2.1/flavors from C keep-alive clients (in two client processes) for
N seconds:

  wsgi       gunicorn gthread workers, cloud.wsgi (no websockets possible) — the baseline
  asgi-pool  uvicorn workers, cloud.asgi: HTTP to the WSGI app in a thread pool, websockets to
             Channels (what the Procfile runs)
  asgi-django  uvicorn workers, Django's own ASGI handler for HTTP, websockets to Channels

Prints requests/s and latency p50/p99 for each, and each one's ratio to the baseline.

    .venv/bin/python -m bench.web_bench --list 1000 [--rounds 5]

times instead GET /compute/v2.1/servers/detail (microversion 2.60, as bench/boot_bench.py asks)
of N servers written straight into the database (4 hosts, no agents, so it takes seconds rather
than boot_bench's minutes), one request at a time from one keep-alive client on the wsgi setup,
beside its baseline in the same run: raw_rows_as_json(), the same rows read with plain SQL and
encoded as JSON. Rounds alternate the two; p50 of each and their ratio (issue 16's goal: ≤ 2×).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import requests

from bench.proc_stats import cpu_seconds
from tests.stack import PG_ADMIN_URL, ROOT, free_port

PYTHON = sys.executable
PATH = "/compute/v2.1/flavors"

SETUPS = {
    "wsgi": ["cloud.wsgi:application", "-k", "gthread", "--threads", "8"],
    "asgi-pool": ["cloud.asgi:application", "-k", "cloud.web_worker.Worker"],
    "asgi-django": ["cloud.asgi:django_asgi_application", "-k", "cloud.web_worker.Worker"],
}
# Django's ASGI handler keeps database connections per request context, so persistent connections
# pile up until PostgreSQL refuses more; under it they must be closed after each request.
SETUP_ENV = {"asgi-django": {"KUMO_DB_CONN_MAX_AGE": "0"}}


def _client(port: int, token: str, seconds: float, threads: int, out: multiprocessing.Queue) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", PATH, headers={"X-Auth-Token": token})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {PATH} answered {response.status}")
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(latencies)


def measure(port: int, token: str, seconds: float, clients: int) -> tuple[float, float, float]:
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_client, args=(port, token, seconds, clients // 2, out))
        for _ in range(2)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    latencies = [x for _ in procs for x in out.get()]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


# The columns of compute_instance that some microversion's server body shows, and the ports with
# their networks and floating IPs that its addresses show: what the list itself has to read.
RAW_INSTANCES = """
    SELECT uuid, display_name, hostname, description, project_id, user_id, image_ref,
           flavor_snapshot, vcpus, memory_mb, root_gb, ephemeral_gb, vm_state, task_state,
           power_state, host, node, availability_zone, key_name, user_data, metadata,
           scheduler_hints, access_ip_v4, access_ip_v6, config_drive, security_groups, locked,
           locked_reason, launch_index, reservation_id, created_at, updated_at, launched_at,
           terminated_at, deleted, progress
      FROM compute_instance WHERE project_id = %s AND NOT deleted
     ORDER BY created_at DESC, uuid DESC LIMIT 1000"""
RAW_PORTS = """
    SELECT p.id, p.device_id, n.name, p.mac_address, p.fixed_ips, f.floating_ip_address,
           f.fixed_ip_address
      FROM network_port p JOIN network_network n ON n.id = p.network_id
      LEFT JOIN network_floatingip f ON f.port_id = p.id
     WHERE p.device_id = ANY(%s)
     ORDER BY p.created_at, p.id, f.created_at, f.id"""


def raw_rows_as_json(conn: psycopg.Connection, project_id: str) -> bytes:
    """The baseline for the list: the rows a server list shows (the project's live servers with
    the columns some body shows, and their ports), read with plain SQL and encoded as JSON. On a
    connection kept open, as the web process keeps its own."""
    cursor = conn.execute(RAW_INSTANCES, (project_id,))
    names = [c.name for c in cursor.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    cursor = conn.execute(RAW_PORTS, ([str(r["uuid"]) for r in rows],))
    names = [c.name for c in cursor.description or []]
    ports = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    conn.rollback()  # no transaction left open between two rounds, as the web process
    return json.dumps({"servers": rows, "ports": ports}, default=str).encode()


_SEED = """
import datetime, uuid
from django.utils import timezone
from cloud.compute.models import COMPUTE_BINARY, Instance, Service
from cloud.identity.models import Project, User
project, user = Project.objects.get(name="admin"), User.objects.get(name="admin")
now = timezone.now()
hosts = [f"bench-{i}" for i in range(4)]
for host in hosts:
    Service.objects.update_or_create(host=host, binary=COMPUTE_BINARY,
                                     defaults={"last_seen_up": now})
flavor = {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0,
          "swap": 0, "extra_specs": {}}
image = str(uuid.uuid4())
Instance.objects.bulk_create([Instance(
    display_name=f"bench-{n}", hostname=f"bench-{n}", project=project, user=user,
    image_ref=image, flavor_snapshot=flavor, vcpus=1, memory_mb=512, root_gb=1,
    vm_state="active", power_state="running", host=hosts[n % 4], node=hosts[n % 4],
    reservation_id=f"r-{n:08x}", launched_at=now, security_groups=["default"],
) for n in range(COUNT)], batch_size=500)
print(project.id)
"""


def measure_list(env: dict[str, str], password: str, count: int, rounds: int) -> None:
    """GET /servers/detail of `count` servers against raw_rows_as_json(), rounds alternated."""
    seeded = subprocess.run([PYTHON, "manage.py", "shell", "-c", _SEED.replace("COUNT", str(count))],
                            cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    project_id = seeded.stdout.split()[-1]
    raw_conn = psycopg.connect(env["DATABASE_URL"])
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", *SETUPS["wsgi"], "--bind", f"127.0.0.1:{port}", "--workers",
         "1", "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True)
    try:
        token = _token(port, password)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.60"}

        def get() -> bytes:
            conn.request("GET", "/compute/v2.1/servers/detail", headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET /servers/detail answered {response.status}")
            return body  # not decoded here: the client's own parsing is no part of the API's time

        listed = len(json.loads(get())["servers"])  # warm-up: connections, caches
        raw_rows_as_json(raw_conn, project_id)
        api, raw = [], []
        api_cpu = raw_cpu = 0.0
        for _ in range(rounds):
            cpu = cpu_seconds([proc.pid])
            for _ in range(5):
                started = time.perf_counter()
                get()
                api.append(time.perf_counter() - started)
            api_cpu += cpu_seconds([proc.pid]) - cpu
            cpu = time.process_time()
            for _ in range(5):
                started = time.perf_counter()
                raw_rows_as_json(raw_conn, project_id)
                raw.append(time.perf_counter() - started)
            raw_cpu += time.process_time() - cpu
        conn.close()
    finally:
        raw_conn.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    p50, raw50 = statistics.median(api) * 1000, statistics.median(raw) * 1000
    # CPU beside wall time: on a shared machine the CPU-seconds hold still when latencies do not.
    # The web process's CPU is the whole request; the baseline's is its client side only.
    api_ms, raw_ms = api_cpu / len(api) * 1000, raw_cpu / len(raw) * 1000
    print(f"GET /servers/detail of {listed} servers (2.60, admin), {len(api)} of each, load "
          f"average {os.getloadavg()[0]:.1f}:\n"
          f"  web process  p50 {p50:6.1f} ms   CPU {api_ms:5.1f} ms a request\n"
          f"  raw SQL+JSON p50 {raw50:6.1f} ms   CPU {raw_ms:5.1f} ms a call\n"
          f"  ratio        p50 {p50 / raw50:5.2f}x   CPU {api_ms / raw_ms:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--list", type=int, default=0, metavar="N",
                        help="time GET /servers/detail of N servers instead")
    parser.add_argument("--rounds", type=int, default=5, help="with --list")
    args = parser.parse_args()

    db = f"kumo_bench_web_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    work = Path(tempfile.mkdtemp(prefix="kumo-web-bench-"))
    (work / "static").mkdir()  # WhiteNoise warns about a missing STATIC_ROOT otherwise
    env = {
        **os.environ, "DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{db}",
        "KUMO_VAR_DIR": str(work), "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "KUMO_LOG_LEVEL": "WARNING",
    }
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([PYTHON, "manage.py", "bootstrap", "--output-dir", str(work)], cwd=ROOT,
                       env=env, check=True, stdout=subprocess.DEVNULL)
        password = next(line.split("=", 1)[1].strip("'\"") for line in
                        (work / "openrc").read_text().splitlines()
                        if line.startswith("export OS_PASSWORD="))
        if args.list:
            measure_list(env, password, args.list, args.rounds)
            return
        results = {}
        for name, argv in SETUPS.items():
            port = free_port()
            proc = subprocess.Popen(
                [PYTHON, "-m", "gunicorn", *argv, "--bind", f"127.0.0.1:{port}", "--workers", "2",
                 "--log-level", "warning"],
                cwd=ROOT, env={**env, **SETUP_ENV.get(name, {})}, start_new_session=True,
            )
            try:
                token = _token(port, password)
                measure(port, token, 1.0, args.clients)  # warm-up: connections, caches
                results[name] = measure(port, token, args.seconds, args.clients)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        base = results["wsgi"][0]
        print(f"GET {PATH}, 2 gunicorn workers, {args.clients} keep-alive clients, "
              f"{args.seconds:.0f} s each")
        for name, (rps, p50, p99) in results.items():
            print(f"  {name:12s} {rps:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
                  f"{rps / base:5.2f}x wsgi")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _token(port: int, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    deadline = time.monotonic() + 60
    while True:
        try:
            response = requests.post(f"http://127.0.0.1:{port}/identity/v3/auth/tokens",
                                     json=body, timeout=10)
            response.raise_for_status()
            return response.headers["X-Subject-Token"]
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


if __name__ == "__main__":
    main()
