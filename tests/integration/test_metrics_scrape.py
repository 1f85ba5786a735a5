"""Debian's Prometheus scrapes a live stack's /metrics: after one boot and one failure every family
is there, counted across the web, scheduler and conductor processes, and the values move as the
cloud does (a delete frees the host, a stopped conductor's queue fills up).

Prometheus runs as the test's own process on a loopback port with a config and data directory of
its own (never the packaged service), and scrapes with the bearer token: /metrics is closed to
every address here, loopback included, so only the token gets in.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.stack import ROOT, AgentSpec, Stack, free_port, qcow2_bytes

V = "/compute/v2.1"
PROMETHEUS = shutil.which("prometheus")
TOKEN = secrets.token_urlsafe(24)
CLOSED = {"KUMO_METRICS_ALLOWED_NETS": "192.0.2.0/24", "KUMO_METRICS_TOKEN": TOKEN}

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian's prometheus is not installed (scripts/setup.sh --test)"
)


class Prometheus:
    def __init__(self, url: str):
        self.url = url

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The instant vector `expr` gives now: labels (without job and instance) -> value."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        answer.raise_for_status()
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k not in {"job", "instance"})):
            float(r["value"][1])
            for r in answer.json()["data"]["result"]
        }

    def value(self, expr: str) -> float | None:
        """The one value of `expr` (summed), or None when it has no series at all."""
        result = self.query(f"sum({expr})")
        return next(iter(result.values()), None)

    def settle(self, expected: dict[str, float], timeout: float = 45) -> None:
        """Wait until every expression has its expected value (each process sends its counts
        within a second, and Prometheus scrapes every second), then say which never did."""
        deadline = time.monotonic() + timeout
        while True:
            got = {expr: self.value(expr) for expr in expected}
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert {e: v for e, v in got.items() if v != expected[e]} == {}

    def wait_for(self, expr: str, want: float, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.value(expr)
            if got is not None and got >= want:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{expr} never reached {want} in Prometheus (last: {got})")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    live = Stack("metrics", agents=[AgentSpec("compute-a", cpus=2, memory_mb=2048)],
                 extra_env=CLOSED)
    with live.running():
        yield live


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[Prometheus]:
    workdir = stack.workdir / "prometheus"
    workdir.mkdir()
    (workdir / "token").write_text(TOKEN)
    (workdir / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: kumo
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {workdir / "token"}
    static_configs:
      - targets: ["127.0.0.1:{stack.port}"]
""")
    port = free_port()
    with open(workdir / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, workdir / "prometheus.log")
        prom = Prometheus(url)
        prom.wait_for('up{job="kumo"}', 1)
        yield prom
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError("prometheus never became ready")


def test_metrics_is_closed_to_an_address_not_allowed_and_open_with_the_token(stack):
    refused = requests.get(f"{stack.url}/metrics", timeout=10)
    assert refused.status_code == 403
    assert "kumo_" not in refused.text
    wrong = requests.get(f"{stack.url}/metrics", headers={"Authorization": "Bearer nope"},
                         timeout=10)
    assert wrong.status_code == 403
    ok = requests.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=10)
    assert ok.status_code == 200
    assert TOKEN not in ok.text


def test_every_family_after_one_boot_and_one_failure_and_values_that_move(stack, prometheus):
    api = stack.client()
    image_id = api.upload_image("metrics-image", qcow2_bytes())
    huge = api.post(f"{V}/flavors", {"flavor": {
        "name": "metrics-huge", "ram": 65536, "vcpus": 1, "disk": 1}})
    assert huge.status_code == 200, huge.text
    assert prometheus.value('kumo_scheduler_decisions_total{outcome="placed"}') in (None, 0)

    booted = _boot(api, image_id, "1")
    server = api.wait_for(booted, {"ACTIVE", "ERROR"})
    assert server["status"] == "ACTIVE", server.get("fault")
    failed = _boot(api, image_id, huge.json()["flavor"]["id"])
    server = api.wait_for(failed, {"ACTIVE", "ERROR"})
    assert server["status"] == "ERROR"
    flavor = api.get(f"{V}/flavors/1").json()["flavor"]

    posts = 'route="compute/v2.1/servers",method="POST",status="202"'
    prometheus.settle({
        # The API, counted by route pattern across the web process's workers.
        f"kumo_api_requests_total{{{posts}}}": 2,
        f'kumo_api_request_duration_seconds_bucket{{{posts},le="+Inf"}}': 2,
        # The scheduler's decisions, counted in the scheduler processes.
        'kumo_scheduler_decisions_total{outcome="placed"}': 1,
        'kumo_scheduler_decision_duration_seconds_count{outcome="no_valid_host"}': 1,
        'kumo_scheduler_no_valid_host_total{filter="RamFilter"}': 1,
        'kumo_scheduler_hosts_removed_total{filter="RamFilter"}': 1,
        'kumo_claims_total{kind="instance"}': 1,
        # Celery tasks by queue: run time, and the wait since the web process published them.
        'kumo_task_duration_seconds_count{queue="scheduler",task="scheduler.schedule_instance",'
        'outcome="success"}': 2,
        # Every task on the scheduler queue (heartbeats from beat too) waited and ran once.
        'sum(kumo_task_queue_wait_seconds_count{queue="scheduler"})'
        ' - sum(kumo_task_duration_seconds_count{queue="scheduler"})': 0,
        # The state now, read at scrape time.
        'kumo_instances{vm_state="active"}': 1,
        'kumo_instances{vm_state="error"}': 1,
        'kumo_host_status{host="compute-a",status="up"}': 1,
        'kumo_host_vcpus{host="compute-a",kind="total"}': 2,
        'kumo_host_vcpus{host="compute-a",kind="used"}': flavor["vcpus"],
        'kumo_host_memory_bytes{host="compute-a",kind="used"}': flavor["ram"] * 2**20,
        'kumo_queue_depth{queue="scheduler"}': 0,
        # The agent's tasks too: timed in the agent, sent with its guest statistics.
        'kumo_task_duration_seconds_count{queue="compute.compute-a",task="compute.spawn",'
        'outcome="success"}': 1,
    })
    q = prometheus.value
    assert q(f"kumo_api_request_duration_seconds_sum{{{posts}}}") > 0
    assert q('kumo_task_duration_seconds_count{queue="conductor"}') >= 1
    assert q('kumo_task_queue_wait_seconds_count{queue="scheduler"}') >= 2
    assert q('kumo_task_queue_wait_seconds_count{queue="compute.compute-a"}') >= 1
    assert q('kumo_task_duration_seconds_sum{queue="compute.compute-a"}') > 0
    assert q('kumo_host_disk_bytes{host="compute-a",kind="allocatable"}') > 0
    assert q('kumo_queue_depth{queue="compute.compute-a"}') is not None
    assert prometheus.query("kumo_metrics_collector_up == 0") == {}
    # A family with no series yet is still declared in the scrape itself.
    text = requests.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).text
    assert re.search(r"^# TYPE kumo_claim_conflicts(_total)? counter$", text, re.MULTILINE)

    # Values move: a delete frees the host and is counted.
    assert api.delete(f"{V}/servers/{booted}").status_code == 204
    api.wait_gone(booted)
    prometheus.wait_for('kumo_api_requests_total{method="DELETE",status="204"}', 1)
    _wait_until(lambda: q('kumo_instances{vm_state="active"}') in (None, 0)
                and q('kumo_host_vcpus{host="compute-a",kind="used"}') == 0,
                "the delete to show in Prometheus")


def test_prometheus_evaluates_every_expression_of_the_grafana_dashboard(prometheus):
    dashboard = json.loads((ROOT / "docs" / "grafana-kumo.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert expressions
    for expr in expressions:
        answer = requests.get(f"{prometheus.url}/api/v1/query", timeout=10,
                              params={"query": expr.replace("$__rate_interval", "1m")})
        assert answer.status_code == 200 and answer.json()["status"] == "success", (expr, answer.text)


def test_a_stopped_conductor_s_queue_fills_up_and_drains_when_it_is_back(stack, prometheus):
    stack.kill("conductor")
    try:
        # The agent's heartbeats (one a second) wait for a conductor.
        prometheus.wait_for('kumo_queue_depth{queue="conductor"}', 3)
    finally:
        stack.restart("conductor")
    _wait_until(lambda: prometheus.value('kumo_queue_depth{queue="conductor"}') == 0,
                "the conductor's queue to drain")


def test_queue_depth_on_rabbitmq():
    live = Stack("metrics-rmq", agents=[AgentSpec("compute-r")], broker="rabbitmq",
                 schedulers=1, extra_env=CLOSED)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def depth(queue: str) -> float | None:
        text = requests.get(f"{live.url}/metrics", headers=headers, timeout=10).text
        line = next((x for x in text.splitlines()
                     if x.startswith(f'kumo_queue_depth{{queue="{queue}"}}')), None)
        return None if line is None else float(line.rsplit(" ", 1)[1])

    with live.running():
        assert depth("scheduler") == 0
        live.kill("conductor")
        _wait_until(lambda: (depth("conductor") or 0) >= 3, "heartbeats to wait in RabbitMQ")
        live.restart("conductor")
        _wait_until(lambda: depth("conductor") == 0, "the conductor's queue to drain")


def _boot(api, image_id: str, flavor: str) -> str:
    body = {"server": {"name": f"metrics-{flavor}", "imageRef": image_id, "flavorRef": flavor,
                       "networks": "none"}}
    response = api.post(f"{V}/servers", body)
    assert response.status_code == 202, response.text
    return response.json()["server"]["id"]


def _wait_until(check, what: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")
