"""Guests' statistics as the control plane keeps them: a bounded history per guest in Redis, only
for guests the reporting host runs, rates across samples (none across a restart), and /metrics."""

from __future__ import annotations

import time

import pytest

from cloud.compute import guest_metrics, guest_stats
from cloud.compute.guest_stats import Sample
from compute_agent import messages as msg
from tests.factories import make_server

pytestmark = pytest.mark.usefixtures("guest_stats_redis")


def counters(uuid: str, t: float, **over: object) -> msg.GuestStats:
    """A guest that has used `t` seconds of CPU and moved 1 KiB per second every way."""
    values: dict[str, object] = {
        "uuid": uuid, "power_state": msg.POWER_RUNNING, "cpu_time_ns": int(t * 1e9),
        "vcpus": 2, "memory_max_kib": 131072, "memory_kib": 131072, "memory_rss_kib": 65536,
        "disks": [msg.DiskStats("vda", read_bytes=int(1024 * t), write_bytes=int(2048 * t))],
        "nics": [msg.NicStats("tap1", "fa:16:3e:00:00:01", rx_bytes=int(4096 * t),
                              tx_bytes=int(512 * t))],
    }
    values.update(over)
    return msg.GuestStats(**values)  # type: ignore[arg-type]


def report(host: str, at: float, *guests: msg.GuestStats) -> msg.GuestStatsReport:
    return msg.GuestStatsReport(host=host, collected_at=at, interval=10.0, guests=list(guests))


def test_history_is_kept_per_guest_and_bounded(member, settings):
    settings.KUMO_GUEST_STATS_HISTORY = 3
    server = make_server(member)
    uuid = str(server.uuid)
    now = time.time()
    for i in range(5):
        assert guest_stats.record(report("compute1", now + 10 * i, counters(uuid, 5.0 * i))) \
            == [uuid]
    kept = guest_stats.history(uuid)
    assert [s.at for s in kept] == [now + 20, now + 30, now + 40]
    assert kept[-1].stats == counters(uuid, 20.0)


def test_a_host_writes_only_the_statistics_of_guests_it_runs(member):
    mine = make_server(member, "mine")
    elsewhere = make_server(member, "elsewhere", host="compute2")
    deleted = make_server(member, "gone", deleted=True)
    now = time.time()
    recorded = guest_stats.record(report(
        "compute1", now, counters(str(mine.uuid), 1), counters(str(elsewhere.uuid), 1),
        counters(str(deleted.uuid), 1), counters("00000000-0000-0000-0000-000000000000", 1)))
    assert recorded == [str(mine.uuid)]
    assert guest_stats.history(str(elsewhere.uuid)) == []


def test_rates_come_from_two_samples_of_the_same_run():
    first = Sample(100.0, "h", 10.0, counters("u", 10.0))
    second = Sample(110.0, "h", 10.0, counters("u", 15.0))  # 5 s of CPU in 10 s on 2 vCPUs
    point = guest_stats.point(first, second)
    assert point.cpu_percent == pytest.approx(25.0)
    assert (point.disk_read_bps, point.disk_write_bps) == (512.0, 1024.0)
    assert (point.net_rx_bps, point.net_tx_bps) == (2048.0, 256.0)
    assert (point.memory_used_mib, point.memory_max_mib) == (64.0, 128.0)


def test_no_rate_across_a_restart_or_a_move():
    before = Sample(100.0, "h", 10.0, counters("u", 10.0))
    restarted = Sample(110.0, "h", 10.0, counters("u", 0.5))
    moved = Sample(110.0, "other", 10.0, counters("u", 20.0))
    for after in (restarted, moved):
        point = guest_stats.point(before, after)
        assert point.cpu_percent is None and point.net_rx_bps is None
    assert [p.cpu_percent for p in guest_stats.series([before])] == [None]


def test_memory_used_is_the_guest_s_own_count_when_it_gives_one():
    assert Sample(0, "h", 10, counters("u", 1, memory_unused_kib=100000)).memory_used_kib \
        == 131072 - 100000
    # Page cache it could give back counts as free (libvirt's "usable"), as `free` shows it.
    assert Sample(0, "h", 10, counters("u", 1, memory_unused_kib=50000,
                                       memory_usable_kib=100000)).memory_used_kib \
        == 131072 - 100000
    assert Sample(0, "h", 10, counters("u", 1)).memory_used_kib == 65536
    assert Sample(0, "h", 10, counters("u", 1, memory_rss_kib=None)).memory_used_kib == 131072


def test_metrics_show_fresh_guests_only(member):
    running = make_server(member, "running")
    silent = make_server(member, "silent")
    now = time.time()
    guest_stats.record(report("compute1", now, counters(str(running.uuid), 3.0)))
    guest_stats.record(report("compute1", now - 600, counters(str(silent.uuid), 3.0)))
    families = {f.name: f for f in guest_metrics.collect()}
    cpu = families["kumo_guest_cpu_seconds"].samples
    assert [(s.labels, s.value) for s in cpu] == [
        ({"instance": str(running.uuid), "host": "compute1"}, 3.0)]
    memory = {s.labels["kind"]: s.value for s in families["kumo_guest_memory_bytes"].samples}
    assert memory == {"maximum": 128 * 2**20, "current": 128 * 2**20, "used": 64 * 2**20}
    assert families["kumo_guest_network_receive_bytes"].samples[0].value == 4096 * 3
    assert families["kumo_guest_disk_write_bytes"].samples[0].value == 2048 * 3
