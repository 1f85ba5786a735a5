"""The dashboard's instances page with 10,000 instances in the project, against the JSON list of the
same rows (GET /compute/v2.1/servers/detail), in the same run on the same server.

    .venv/bin/python -m bench.dashboard_bench [--instances 10000] [--repeat 30]

A fresh PostgreSQL database gets the bootstrap data and N instances of the admin project (rows made
straight in the database, each with a port and address, as the API would have left them). The web
process runs as the Procfile runs it (gunicorn, uvicorn workers, cloud.asgi). Each request is
timed from sending it to the first byte of the answer (TTFB) and to its last byte (full), as the
median of `--repeat` tries after a warm-up. When Chromium is installed, the page is also loaded in
it, with its stylesheet and scripts, and the browser's own navigation timing is reported.

Figures, not pass/fail. The baseline is the JSON list of the same 25 rows.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests

from tests.stack import PG_ADMIN_URL, ROOT, free_port

PYTHON = sys.executable
CHROMIUM = "/usr/bin/chromium"


def seed(count: int) -> None:
    """Inside a Django process: `count` ACTIVE instances of the admin project with a port each."""
    from django.utils import timezone

    from cloud.compute.models import Flavor, Instance
    from cloud.identity.models import Project, User
    from cloud.images.models import Image
    from cloud.network.models import Network, Port

    project = Project.objects.get(name="admin")
    user = User.objects.get(name="admin")
    flavor = Flavor.objects.get(flavorid="1")
    image = Image.objects.create(name="bench-image", status="active", disk_format="qcow2",
                                 container_format="bare", visibility="public", size=1)
    network = Network.objects.get(name="private")
    subnet = network.subnets.first()
    snapshot = {"id": flavor.flavorid, "name": flavor.name, "vcpus": flavor.vcpus,
                "ram": flavor.memory_mb, "disk": flavor.root_gb, "ephemeral": 0, "swap": 0,
                "extra_specs": {}}
    now = timezone.now()
    instances = [
        Instance(display_name=f"bench-{n:05d}", hostname=f"bench-{n:05d}", project=project,
                 user=user, image_ref=str(image.id), flavor=flavor, flavor_snapshot=snapshot,
                 vcpus=1, memory_mb=128, root_gb=1, vm_state="active", power_state="running",
                 host="compute-1", node="compute-1", launched_at=now)
        for n in range(count)
    ]
    Instance.objects.bulk_create(instances, batch_size=1000)
    Port.objects.bulk_create([
        Port(network=network, project=project, device_id=str(i.uuid), device_owner="compute:nova",
             mac_address=f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
             fixed_ips=[{"subnet_id": str(subnet.id),
                         "ip_address": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}],
             status="ACTIVE")
        for n, i in enumerate(instances)
    ], batch_size=1000)


def timed_get(port: int, path: str, headers: dict[str, str], repeat: int) -> tuple[float, float, int]:
    """Median TTFB and full time in ms, and the body size, over `repeat` keep-alive requests."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    firsts, fulls, size = [], [], 0
    for attempt in range(repeat + 2):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        first = response.read(1)
        got_first = time.perf_counter()
        body = first + response.read()
        done = time.perf_counter()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
        if attempt >= 2:  # two warm-ups: connections, template and query caches
            firsts.append((got_first - started) * 1000)
            fulls.append((done - started) * 1000)
            size = len(body)
    conn.close()
    return statistics.median(firsts), statistics.median(fulls), size


def sign_in(base: str, password: str) -> str:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(f"{base}/login/", data={
        "csrfmiddlewaretoken": token, "username": "admin", "password": password, "next": "/"},
        headers={"Referer": f"{base}/login/"}, timeout=30, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def api_token(base: str, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    response = requests.post(f"{base}/identity/v3/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def browser_timing(base: str, cookie: str, path: str, repeat: int) -> tuple[float, float] | None:
    """Median TTFB and load-event time (ms) of the page in Chromium, stylesheet and scripts
    included; None without Chromium or Playwright."""
    if not os.path.exists(CHROMIUM):
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    firsts, loads = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        context = browser.new_context()
        context.add_cookies([{"name": k, "value": v, "url": base}
                             for k, v in (c.split("=", 1) for c in cookie.split("; "))])
        page = context.new_page()
        for attempt in range(repeat + 2):
            page.goto(f"{base}{path}", wait_until="load")
            timing = page.evaluate("""() => {
                const t = performance.getEntriesByType("navigation")[0];
                return [t.responseStart - t.requestStart, t.loadEventStart - t.startTime];
            }""")
            if attempt >= 2:
                firsts.append(timing[0])
                loads.append(timing[1])
        browser.close()
    return statistics.median(firsts), statistics.median(loads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    db = f"kumo_bench_dash_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    work = Path(tempfile.mkdtemp(prefix="kumo-dashboard-bench-"))
    (work / "static").mkdir()
    env = {
        **os.environ, "DATABASE_URL": f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{db}",
        "KUMO_VAR_DIR": str(work), "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "KUMO_LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "cloud.settings",
    }
    proc = None
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([PYTHON, "manage.py", "bootstrap", "--output-dir", str(work)], cwd=ROOT,
                       env=env, check=True, stdout=subprocess.DEVNULL)
        started = time.monotonic()
        seeding = f"from bench.dashboard_bench import seed; seed({args.instances})"
        subprocess.run([PYTHON, "-c", f"import django; django.setup(); {seeding}"],
                       cwd=ROOT, env=env, check=True)
        print(f"seeded {args.instances} instances with ports in {time.monotonic() - started:.1f} s")
        analyze = "from django.db import connection; connection.cursor().execute('ANALYZE')"
        subprocess.run([PYTHON, "-c", f"import django; django.setup(); {analyze}"],
                       cwd=ROOT, env=env, check=True)
        password = next(line.split("=", 1)[1].strip("'\"") for line in
                        (work / "openrc").read_text().splitlines()
                        if line.startswith("export OS_PASSWORD="))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "cloud.asgi:application", "-k", "cloud.web_worker.Worker",
             "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning"],
            cwd=ROOT, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/login/", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        cookie = sign_in(base, password)
        token = api_token(base, password)
        page_headers = {"Cookie": cookie}
        api_headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.60"}
        cases = [
            ("JSON servers/detail, 25 rows (baseline)", "/compute/v2.1/servers/detail?limit=25",
             api_headers),
            ("JSON servers/detail, 1000 rows (default)", "/compute/v2.1/servers/detail",
             api_headers),
            ("dashboard /instances/, 25 rows", "/instances/", page_headers),
            ("dashboard /instances/, 100 rows", "/instances/?per_page=100", page_headers),
            ("dashboard, sorted by name, page 200", "/instances/?sort=name&page=200",
             page_headers),
            ("dashboard, filtered 'bench-09'", "/instances/?q=bench-09", page_headers),
            ("dashboard htmx fragment, 25 rows", "/instances/",
             {**page_headers, "HX-Request": "true", "HX-Target": "instance-table"}),
        ]
        results = [(label, *timed_get(port, path, headers, args.repeat))
                   for label, path, headers in cases]
        base_full = results[0][2]
        print(f"\n{args.instances} instances in the project; median of {args.repeat} requests, "
              "2 uvicorn workers (as the Procfile)")
        print(f"  {'':42s} {'TTFB':>9s} {'full':>9s} {'bytes':>9s} {'full vs baseline':>17s}")
        for label, first, full, size in results:
            print(f"  {label:42s} {first:7.1f}ms {full:7.1f}ms {size:9d} {full / base_full:16.2f}x")
        timing = browser_timing(base, cookie, "/instances/", max(5, args.repeat // 3))
        if timing is not None:
            print(f"  {'Chromium: /instances/ (TTFB, load event)':42s} {timing[0]:7.1f}ms "
                  f"{timing[1]:7.1f}ms   (stylesheet, htmx and scripts included)")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
