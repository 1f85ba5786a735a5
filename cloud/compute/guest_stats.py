"""Guests' statistics: the latest counters of every running guest and a short history of them.

Each compute agent sends its guests' counters every few seconds (compute_agent.guest_stats, task
conductor.guest_stats); the conductor hands them to `record`. They are kept in Redis, never in the
database: one list per instance holding its last KUMO_GUEST_STATS_HISTORY samples (newest first),
trimmed on every push and expiring once its guest stops reporting, so the memory they take is
bounded by the guests that run, and a deleted or moved guest leaves nothing behind for long.

Samples hold libvirt's cumulative counters as the host read them. Rates (CPU %, bytes per second)
are worked out here from two samples; a counter that went down means the guest's qemu started
again (a reboot, a move to another host), and the rate across it is unknown rather than negative.

Readers: the diagnostics API (os-server-diagnostics), the dashboard's instance charts, /metrics.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.conf import settings

from cloud import errors, events
from cloud.metrics import task_timing
from compute_agent import messages as msg

from . import states
from .models import ComputeNode, Instance

# A sample older than this many report intervals is not the guest's current state: its host
# stopped reporting (it is down, or the guest moved and its new host has not reported yet).
STALE_AFTER_INTERVALS = 3
MIN_STALE_AFTER = 30.0

_LAYOUT = 1
_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis() -> redis.Redis:
    url = settings.KUMO_GUEST_STATS_URL
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, socket_timeout=5)
        return client


def _key(instance_uuid: str) -> str:
    return f"{settings.KUMO_GUEST_STATS_PREFIX}{instance_uuid}"


@dataclass(frozen=True)
class Sample:
    """One guest's counters at one moment, on one host."""

    at: float  # epoch seconds, the host's clock
    host: str
    interval: float  # seconds until the host's next sample
    stats: msg.GuestStats

    # Stored as a positional JSON array, about a third of the size of the same sample with field
    # names (Redis holds KUMO_GUEST_STATS_HISTORY of them per guest; bench/guest_stats_bench.py).
    # The first element says which layout follows.
    def to_json(self) -> str:
        s = self.stats
        return json.dumps([
            _LAYOUT, self.at, self.host, self.interval, s.power_state, s.cpu_time_ns, s.vcpus,
            s.vcpu_times_ns, s.memory_max_kib, s.memory_kib, s.memory_rss_kib,
            s.memory_unused_kib, s.memory_usable_kib,
            [[d.name, d.read_bytes, d.read_requests, d.write_bytes, d.write_requests, d.errors]
             for d in s.disks],
            [[n.name, n.mac_address, n.rx_bytes, n.rx_packets, n.rx_errors, n.rx_drops,
              n.tx_bytes, n.tx_packets, n.tx_errors, n.tx_drops] for n in s.nics],
        ], separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str, instance_uuid: str = "") -> Sample:
        (layout, at, host, interval, power_state, cpu, vcpus, vcpu_times, mem_max, mem, rss,
         unused, usable, disks, nics) = json.loads(raw)
        if layout != _LAYOUT:
            raise ValueError(f"sample layout {layout!r}")
        return cls(float(at), str(host), float(interval), msg.GuestStats(
            uuid=instance_uuid, power_state=power_state, cpu_time_ns=cpu, vcpus=vcpus,
            vcpu_times_ns=vcpu_times, memory_max_kib=mem_max, memory_kib=mem,
            memory_rss_kib=rss, memory_unused_kib=unused, memory_usable_kib=usable,
            disks=[msg.DiskStats(*d) for d in disks], nics=[msg.NicStats(*n) for n in nics]))

    def fresh(self, now: float | None = None) -> bool:
        age = (time.time() if now is None else now) - self.at
        return age <= max(MIN_STALE_AFTER, STALE_AFTER_INTERVALS * self.interval)

    @property
    def memory_used_kib(self) -> int:
        """What the guest uses: its own count where its balloon driver reports one (what it could
        not give back without swapping, else what is not free at all), else the host memory its
        qemu holds, else all it was given."""
        s = self.stats
        if s.memory_usable_kib is not None:
            return max(0, s.memory_kib - s.memory_usable_kib)
        if s.memory_unused_kib is not None:
            return max(0, s.memory_kib - s.memory_unused_kib)
        if s.memory_rss_kib is not None:
            return min(s.memory_rss_kib, s.memory_max_kib or s.memory_rss_kib)
        return s.memory_kib


# --- writing (the conductor)


def record(report: msg.GuestStatsReport) -> list[str]:
    """Keep the samples of `report` for the guests that live on its host; return their uuids.

    A host's report counts only for instances the database places on it: a guest a host still
    runs after it moved (or one it should not have) never writes over the real one's history.
    """
    # The agent's own task timings ride on the report (a host with no guests still has tasks).
    task_timing.record_agent_tasks(msg.compute_queue(report.host), report.task_runs,
                                   report.task_waits)
    reported = {g.uuid: g for g in report.guests}
    if not reported:
        return []
    ours = [
        str(u) for u in Instance.objects.filter(
            uuid__in=list(reported), host=report.host, deleted=False,
        ).values_list("uuid", flat=True)
    ]
    if not ours:
        return []
    history = max(2, settings.KUMO_GUEST_STATS_HISTORY)
    # Kept while the guest reports, and for the span of its history after it stops.
    ttl = max(60, int(history * max(report.interval, 1.0)))
    pipe = _redis().pipeline(transaction=False)
    for uuid in ours:
        sample = Sample(report.collected_at, report.host, report.interval, reported[uuid])
        key = _key(uuid)
        pipe.lpush(key, sample.to_json())
        pipe.ltrim(key, 0, history - 1)
        pipe.expire(key, ttl)
    pipe.execute()
    events.guest_stats_recorded(report.host, ours)
    return ours


def forget(instance_uuid: str) -> None:
    """Drop an instance's samples (it was deleted)."""
    _redis().delete(_key(str(instance_uuid)))


# --- reading


def history(instance_uuid: str, limit: int | None = None) -> list[Sample]:
    """The instance's samples, oldest first (at most `limit`, the newest ones)."""
    end = -1 if limit is None else max(0, limit - 1)
    raw = cast(list[bytes], _redis().lrange(_key(str(instance_uuid)), 0, end))
    samples = []
    for item in raw:
        try:
            samples.append(Sample.from_json(item, str(instance_uuid)))
        except (ValueError, KeyError, TypeError):
            continue  # a sample from a newer or broken writer: skip it, not the whole history
    samples.reverse()
    return samples


def latest(instance_uuids: Iterable[str]) -> dict[str, Sample]:
    """The newest sample of each instance that has one (one round trip for them all)."""
    uuids = [str(u) for u in instance_uuids]
    if not uuids:
        return {}
    pipe = _redis().pipeline(transaction=False)
    for uuid in uuids:
        pipe.lindex(_key(uuid), 0)
    found = {}
    for uuid, raw in zip(uuids, pipe.execute(), strict=True):
        if raw is not None:
            try:
                found[uuid] = Sample.from_json(raw, uuid)
            except (ValueError, KeyError, TypeError):
                continue
    return found


def keys_scan() -> Iterable[str]:
    """The uuids of every instance with samples kept (for /metrics)."""
    prefix = settings.KUMO_GUEST_STATS_PREFIX
    for key in _redis().scan_iter(match=f"{prefix}*", count=500):
        name = key.decode() if isinstance(key, bytes) else str(key)
        yield name[len(prefix):]


# --- rates between two samples


def same_run(before: Sample, after: Sample) -> bool:
    """Whether two samples count from the same start of the guest (same host, no counter went
    back), so that their difference means something."""
    return (before.host == after.host and after.at > before.at
            and after.stats.cpu_time_ns >= before.stats.cpu_time_ns)


def _per_second(before: int, after: int, seconds: float) -> float | None:
    if after < before:
        return None
    return (after - before) / seconds


@dataclass(frozen=True)
class Point:
    """What a chart shows at one moment: rates over the time since the previous sample."""

    at: float
    cpu_percent: float | None  # of all the guest's vCPUs together (100: every vCPU busy)
    memory_used_mib: float
    memory_max_mib: float
    disk_read_bps: float | None
    disk_write_bps: float | None
    net_rx_bps: float | None  # what the guest received
    net_tx_bps: float | None  # what it sent

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def point(before: Sample | None, after: Sample) -> Point:
    s = after.stats
    rates: dict[str, float | None] = dict.fromkeys(
        ("cpu", "rd", "wr", "rx", "tx"), None)
    if before is not None and same_run(before, after):
        b = before.stats
        dt = after.at - before.at
        cpu = _per_second(b.cpu_time_ns, s.cpu_time_ns, dt)
        if cpu is not None and s.vcpus:
            rates["cpu"] = min(100.0, cpu / 1e9 / s.vcpus * 100)
        rates["rd"] = _per_second(sum(d.read_bytes for d in b.disks),
                                  sum(d.read_bytes for d in s.disks), dt)
        rates["wr"] = _per_second(sum(d.write_bytes for d in b.disks),
                                  sum(d.write_bytes for d in s.disks), dt)
        rates["rx"] = _per_second(sum(n.rx_bytes for n in b.nics),
                                  sum(n.rx_bytes for n in s.nics), dt)
        rates["tx"] = _per_second(sum(n.tx_bytes for n in b.nics),
                                  sum(n.tx_bytes for n in s.nics), dt)
    return Point(
        at=after.at, cpu_percent=rates["cpu"],
        memory_used_mib=after.memory_used_kib / 1024, memory_max_mib=s.memory_max_kib / 1024,
        disk_read_bps=rates["rd"], disk_write_bps=rates["wr"],
        net_rx_bps=rates["rx"], net_tx_bps=rates["tx"],
    )


def series(samples: Sequence[Sample]) -> list[Point]:
    """A chart's points from samples oldest first: each against the one before it."""
    return [point(samples[i - 1] if i else None, sample) for i, sample in enumerate(samples)]


# --- diagnostics (os-server-diagnostics)


@dataclass(frozen=True)
class Diagnostics:
    """What the diagnostics API answers from: the newest sample and the one before it."""

    instance: Instance
    current: Sample
    previous: Sample | None
    hypervisor_type: str  # the host's, as libvirt names it (QEMU, TEST)

    @property
    def seconds(self) -> float | None:
        if self.previous is None or not same_run(self.previous, self.current):
            return None
        return self.current.at - self.previous.at


def diagnostics(instance: Instance) -> Diagnostics:
    """The instance's current counters. Conflict (as Nova) unless it is ACTIVE on a host, and
    while its host has sent nothing recent for it (it just started, or the host is silent)."""
    if instance.vm_state != states.ACTIVE or not instance.host:
        raise errors.Conflict(
            f"Cannot 'get_diagnostics' instance {instance.uuid} while it is in vm_state "
            f"{instance.vm_state}")
    samples = history(str(instance.uuid), limit=2)
    current = samples[-1] if samples else None
    if current is None or current.host != instance.host or not current.fresh():
        raise errors.Conflict(
            f"Instance {instance.uuid} is not ready: its host {instance.host} has sent no recent "
            "statistics for it; try again in a few seconds.")
    previous = samples[-2] if len(samples) > 1 else None
    hypervisor = ComputeNode.objects.filter(host=instance.host).values_list(
        "hypervisor_type", flat=True).first()
    return Diagnostics(instance, current, previous, hypervisor or "")


def chart(instance: Instance, limit: int | None = None) -> list[dict[str, Any]]:
    """The instance's history as chart points (plain dicts), oldest first."""
    return [p.to_dict() for p in series(history(str(instance.uuid), limit))]


def newest_point(instance_uuid: str) -> dict[str, Any] | None:
    """The newest chart point of an instance, against the sample before it."""
    samples = history(instance_uuid, limit=2)
    if not samples:
        return None
    return point(samples[-2] if len(samples) > 1 else None, samples[-1]).to_dict()
