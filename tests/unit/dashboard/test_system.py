"""The admin "System" page: boots per minute, API latency, queue depths, no-valid-host by filter
and host use, read from the recorded metrics (a process-local store here) and the hosts' rows."""

from __future__ import annotations

import pytest
import redis
from django.core.cache import cache

from cloud import metrics
from cloud.compute.models import ComputeNode
from cloud.dashboard import system
from cloud.metrics import families, store
from tests.factories import make_node

from .conftest import signed_in

pytestmark = pytest.mark.django_db

URL = "/manage/system/"
T0 = 1_800_000_000.0  # a slot boundary: STEP_SECONDS divides it


@pytest.fixture(autouse=True)
def seeded(settings):
    """An empty process-local metrics store, kombu's in-memory broker for the queue depths, and
    no samples kept from another test."""
    settings.KUMO_METRICS_URL = "memory://"
    settings.CELERY_BROKER_URL = "memory://"
    recorded = store.current()
    assert isinstance(recorded, store.MemoryStore)
    recorded.clear()
    cache.clear()
    yield recorded
    recorded.clear()
    cache.clear()


def boot(outcome: str = "active") -> None:
    """A boot placed by the scheduler that ended with `outcome` (or was refused for want of a
    host), counted as the scheduler and the conductor count it."""
    placed = outcome != "no_valid_host"
    metrics.observe(families.SCHEDULER_DECISIONS, 0.004, "placed" if placed else outcome)
    metrics.inc(families.BOOTS, outcome)


def request(api: str, seconds: float) -> None:
    metrics.observe(families.API_REQUEST_SECONDS, seconds, api, "route", "GET", "200")


def test_two_boots_raise_the_boots_per_minute():
    system.snapshot(T0)
    before = system.snapshot(T0 + 5)
    assert before["now"]["boots_per_minute"]["active"] == 0

    boot()
    boot()
    after = system.snapshot(T0 + 10)

    assert after["now"]["boots_per_minute"]["active"] == 12.0  # 2 boots over the last 10 s
    assert after["points"][-1]["boots_per_minute"] == {"active": 24.0, "placed": 24.0,
                                                       "failed": 0}  # 2 in the last 5 s step


def test_a_failed_boot_counts_as_failed_and_under_the_filter_that_removed_the_last_hosts():
    system.snapshot(T0)
    boot("no_valid_host")
    metrics.inc(families.NO_VALID_HOST, "RamFilter")

    answer = system.snapshot(T0 + 5)

    assert answer["points"][-1]["boots_per_minute"] == {"active": 0, "placed": 0, "failed": 12.0}
    assert answer["no_valid_host"]["total"] == {"RamFilter": 1}
    assert answer["no_valid_host"]["recent"] == {"RamFilter": 1}


def test_boots_that_failed_on_their_host_or_timed_out_count_as_failed():
    system.snapshot(T0)
    boot("spawn_failed")
    boot("timed_out")
    assert system.snapshot(T0 + 5)["points"][-1]["boots_per_minute"] == {
        "active": 0, "placed": 24.0, "failed": 24.0}


def test_api_latency_quantiles_come_from_the_buckets_of_each_route_family():
    system.snapshot(T0)
    for _ in range(90):
        request("compute", 0.003)  # bucket (0.0025, 0.005]
    for _ in range(10):
        request("compute", 0.2)  # bucket (0.1, 0.25]
    request("identity", 0.02)

    point = system.snapshot(T0 + 5)["points"][-1]["api"]

    assert 2.5 < point["compute"]["p50"] <= 5.0  # milliseconds
    assert 100 < point["compute"]["p95"] <= 250
    assert point["compute"]["per_minute"] == 100 * 12
    assert 10 < point["identity"]["p50"] <= 25
    assert "image" not in point  # no request, no figure


def test_quantile_interpolates_inside_a_bucket_and_stops_at_the_top_bound():
    cumulative = [0.0] * (len(families.LATENCY_BUCKETS) + 1)
    assert system.quantile(0.5, cumulative) is None
    for i in range(3, len(cumulative)):  # 10 observations, all in (0.005, 0.01]
        cumulative[i] = 10
    assert system.quantile(0.5, cumulative) == pytest.approx(0.0075)
    everything_slow = [0.0] * len(families.LATENCY_BUCKETS) + [4.0]
    assert system.quantile(0.95, everything_slow) == families.LATENCY_BUCKETS[-1]


def test_one_sample_per_slot_whatever_the_number_of_askers(monkeypatch):
    reads = []
    real = system.read_sample
    monkeypatch.setattr(system, "read_sample", lambda at: reads.append(at) or real(at))

    for asker in range(4):  # four workers (or pages) ask within the same 5 s slot
        system.snapshot(T0 + asker)
    system.snapshot(T0 + 5)

    assert reads == [T0, T0 + 5]
    assert len(system.history(T0 + 6)) == 2


def test_samples_older_than_the_kept_window_are_gone():
    system.snapshot(T0)
    system.snapshot(T0 + 5)
    later = system.snapshot(T0 + system.KEEP_SECONDS + 5)
    assert [p["at"] for p in later["points"]] == [T0 + system.KEEP_SECONDS + 5]


def test_queue_depths_are_sampled_for_the_control_plane_and_each_host():
    make_node("compute-1")
    answer = system.snapshot(T0)
    assert answer["queues"] == {"scheduler": 0, "conductor": 0, "compute.compute-1": 0}


def test_a_broker_out_of_reach_leaves_out_only_the_queue_depths(settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1
    make_node("compute-1")
    system.snapshot(T0)
    boot()
    answer = system.snapshot(T0 + 5)
    assert answer["queues"] is None
    assert answer["points"][-1]["boots_per_minute"]["active"] == 12.0


def test_a_metrics_store_out_of_reach_leaves_a_gap_and_still_shows_host_use(monkeypatch):
    make_node("compute-1")
    system.snapshot(T0)

    def unreachable():
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(system.store, "current", unreachable)
    answer = system.snapshot(T0 + 5)
    assert answer["points"] == [] and answer["now"] is None
    assert [h["host"] for h in answer["hosts"]] == ["compute-1"]

    monkeypatch.undo()
    boot()
    later = system.snapshot(T0 + 10)
    assert [p["seconds"] for p in later["points"]] == [10.0]  # across the gap
    assert later["points"][0]["boots_per_minute"]["active"] == 6.0


def test_host_use_per_host_and_in_total():
    make_node("compute-1", vcpus=4, memory_mb=4096, local_gb=40, cpu_ratio=4.0, ram_ratio=1.5)
    make_node("compute-2", vcpus=8, memory_mb=8192, local_gb=100)
    ComputeNode.objects.filter(host="compute-1").update(
        vcpus_used=3, memory_mb_used=2048, local_gb_used=10)

    answer = system.snapshot(T0)

    one = answer["hosts"][0]
    assert one["host"] == "compute-1" and one["status"] == "up"
    assert one["vcpus"] == {"used": 3, "total": 4, "capacity": 16.0}
    assert one["memory_mb"] == {"used": 2048, "total": 4096, "capacity": 6144.0}
    assert answer["total"]["vcpus"] == {"used": 3, "total": 12, "capacity": 24.0}
    assert answer["total"]["disk_gb"]["total"] == 140


def test_the_page_is_for_admins(admin, member):
    page = signed_in(admin).get(URL)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-system-charts="/manage/system/data"' in text
    assert 'href="/manage/system/" aria-current="page"' in text
    assert signed_in(member).get(URL).status_code == 403
    assert 'href="/manage/system/"' not in signed_in(member).get("/").content.decode()


def test_the_data_since_a_point_holds_only_the_newer_points(admin, monkeypatch):
    browser = signed_in(admin)
    for step in range(3):
        monkeypatch.setattr(system, "_now", lambda step=step: T0 + 5 * step)
        browser.get(URL + "data")
    assert [p["at"] for p in browser.get(URL + "data").json()["points"]] == [T0 + 5, T0 + 10]
    newer = browser.get(URL + "data", {"since": str(T0 + 5)}).json()
    assert [p["at"] for p in newer["points"]] == [T0 + 10]
    assert newer["hosts"] == [] and newer["total"]["vcpus"]["used"] == 0


@pytest.mark.parametrize("since", ["soon", "nan", "inf", ""])
def test_a_since_that_is_no_time_is_a_clear_400(admin, since):
    answer = signed_in(admin).get(URL + "data", {"since": since})
    assert answer.status_code == 400
    assert answer.json() == {"badRequest": {
        "code": 400, "message": "since must be a number of seconds since the epoch."}}


@pytest.mark.parametrize("persona", ["member", "reader"])
def test_the_data_is_refused_to_non_admins(persona, request):
    assert signed_in(request.getfixturevalue(persona)).get(URL + "data").status_code == 403


def test_the_data_feeding_the_charts(admin, monkeypatch):
    make_node("compute-1")
    browser = signed_in(admin)
    monkeypatch.setattr(system, "_now", lambda: T0)
    browser.get(URL + "data")
    monkeypatch.setattr(system, "_now", lambda: T0 + 5)
    boot()
    metrics.inc(families.NO_VALID_HOST, "RamFilter")

    answer = browser.get(URL + "data")

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    assert answer["Cache-Control"] == "no-store"
    data = answer.json()
    assert set(data) == {"at", "step_seconds", "keep_seconds", "now", "points", "queues",
                         "no_valid_host", "hosts", "total"}
    assert data["step_seconds"] == system.STEP_SECONDS
    assert data["queues"]["scheduler"] == 0
    assert [h["host"] for h in data["hosts"]] == ["compute-1"]
    assert set(data["total"]) == {"vcpus", "memory_mb", "disk_gb"}
    [point] = data["points"]
    assert set(point) == {"at", "seconds", "boots_per_minute", "api", "queues"}
    assert point["boots_per_minute"]["active"] == 12.0
    assert set(point["api"]["dashboard"]) == {"p50", "p95", "per_minute"}  # the first fetch
    assert data["no_valid_host"]["total"] == {"RamFilter": 1}
