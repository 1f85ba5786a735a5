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
"""

from __future__ import annotations

import argparse
import http.client
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
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
