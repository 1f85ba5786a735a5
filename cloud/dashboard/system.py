"""What the admin "System" page charts: boots per minute, API latency by route family, queue
depths, no-valid-host by eliminating filter, and host use — read from the same counts /metrics
shows (cloud/metrics) and the compute hosts' rows.

Rates need history, and the recorded families are cumulative. So the service keeps a short one:
every `STEP_SECONDS` a sample of the cumulative counts (and the queue depths, which are a gauge)
goes into the shared cache (Redis in a deployment) under the key of its time slot, expiring after
`KEEP_SECONDS`, which bounds it at KEEP/STEP keys without any trimming. Several web workers (and
several admins' pages) ask at once; the first to reach a slot claims it with `cache.add` (Redis
`SET NX`), and only that one reads the counts, the broker and stores the sample: whatever the
number of workers or viewers, one sample per slot, and one broker connection per `STEP_SECONDS`.
Every other answer is built from stored samples only. Samples are taken while someone watches
the page (no periodic task costs anything when nobody does); a slot nobody asked for is a gap,
and a rate over a gap is spread over the real time between its two samples.

Boots per minute: `active` and `failed` are boots that ended (`kumo_boots_total`: running, or
no valid host, failed on its last try, timed out), `placed` the scheduler's placements (a host
claimed; a build rescheduled after failing on its host is placed again).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import redis
from django.core.cache import cache
from kombu.exceptions import OperationalError

from cloud.compute import boot_metrics
from cloud.compute import hosts as compute_hosts
from cloud.compute.models import ComputeNode
from cloud.metrics import families, queues, store
from compute_agent import messages as msg

log = logging.getLogger(__name__)

STEP_SECONDS = 5
KEEP_SECONDS = 15 * 60
RECENT_SECONDS = 60  # "now" figures are rates over about the last minute
_PREFIX = "dashboard:system"

_BOOT_OUTCOMES = ("active", "failed", "placed")
_BOUNDS = (*families.LATENCY_BUCKETS, float("inf"))
_READ = (families.API_REQUEST_SECONDS, families.SCHEDULER_DECISIONS, families.BOOTS,
         families.NO_VALID_HOST)

Sample = dict[str, Any]


# --- samples: the cumulative counts at one moment ----------------------------------------------

def read_sample(at: float) -> Sample:
    """The counts now: boots by outcome (and placements), API requests per latency bucket by
    route family (the `api` label, summed over routes, methods and statuses; cumulative, as
    Prometheus's buckets), no-valid-host by filter, and the depth of every queue (None when the
    broker cannot be reached).

    Only the four hashes the page needs are read, their fields decoded as /metrics decodes them
    (`metrics.field_name`: the label values, then a histogram's bucket index or "sum"). Drawing
    every recorded family through prometheus_client instead cost 0.8 s a sample with 19,000
    API series on a loaded machine (bench/system_page_bench.py)."""
    hashes = store.current().read(f.key for f in _READ)
    boots = dict.fromkeys(_BOOT_OUTCOMES, 0.0)
    for labels, value in _series(hashes, families.SCHEDULER_DECISIONS, bucketed=True):
        if labels[0] == "placed":
            boots["placed"] += value
    for labels, value in _series(hashes, families.BOOTS):
        boots["active" if labels[0] == boot_metrics.ACTIVE else "failed"] += value
    no_valid_host: dict[str, float] = {}
    for labels, value in _series(hashes, families.NO_VALID_HOST):
        no_valid_host[labels[0]] = no_valid_host.get(labels[0], 0.0) + value
    api: dict[str, list[float]] = {}
    for labels, value, bucket in _buckets(hashes, families.API_REQUEST_SECONDS):
        api.setdefault(labels[0], [0.0] * len(_BOUNDS))[bucket] += value
    for counts in api.values():
        for i in range(1, len(counts)):
            counts[i] += counts[i - 1]
    return {"at": at, "boots": boots, "api": api, "no_valid_host": no_valid_host,
            "queues": _queue_depths()}


def _fields(hashes: dict[str, dict[str, str]], family: families.Family,
            ) -> Iterator[tuple[list, float]]:
    width = len(family.labels) + (1 if family.kind == families.HISTOGRAM else 0)
    for field, value in hashes.get(family.key, {}).items():
        try:
            parts = json.loads(field)
        except ValueError:
            continue
        if isinstance(parts, list) and len(parts) == width:  # else: another version's field
            yield parts, float(value)


def _series(hashes: dict[str, dict[str, str]], family: families.Family,
            bucketed: bool = False) -> Iterator[tuple[list, float]]:
    """(labels, count) of a counter, or of a histogram's observations (`bucketed`)."""
    for parts, value in _fields(hashes, family):
        if not bucketed:
            yield parts, value
        elif isinstance(parts[-1], int):  # a bucket's own count; "sum" is seconds, not a count
            yield parts[:-1], value


def _buckets(hashes: dict[str, dict[str, str]], family: families.Family,
             ) -> Iterator[tuple[list, float, int]]:
    for parts, value in _fields(hashes, family):
        bucket = parts[-1]
        if isinstance(bucket, int) and 0 <= bucket < len(_BOUNDS):
            yield parts[:-1], value, bucket


def _queue_depths() -> dict[str, int] | None:
    names = [msg.SCHEDULER_QUEUE, msg.CONDUCTOR_QUEUE,
             *(msg.compute_queue(h) for h in
               ComputeNode.objects.order_by("host").values_list("host", flat=True))]
    try:
        return queues.depths(names)
    except (OperationalError, OSError) as error:  # the page still shows everything else
        log.warning("queue depths not read: %s", type(error).__name__)
        return None


def _now() -> float:
    return time.time()


def _key(slot: int) -> str:
    return f"{_PREFIX}:sample:{slot}"


def history(now: float | None = None) -> list[Sample]:
    """The kept samples, oldest first, after taking this slot's if no worker has yet."""
    now = _now() if now is None else now
    slot = int(now // STEP_SECONDS)
    try:
        # SET NX across every worker: only the first asker of a slot samples it.
        if cache.add(f"{_PREFIX}:claim:{slot}", 1, timeout=STEP_SECONDS * 3):
            cache.set(_key(slot), read_sample(now), timeout=KEEP_SECONDS)
        first = slot - KEEP_SECONDS // STEP_SECONDS
        found = cache.get_many([_key(s) for s in range(first, slot + 1)])
    except redis.RedisError as error:
        # The counts or the cache are out of reach: no figures this time (the slot stays a gap
        # rather than a sample of zeros, which would read as a reset), host use still shows.
        log.warning("system page: samples not read (%s)", type(error).__name__)
        return []
    return sorted(found.values(), key=lambda sample: sample["at"])


# --- figures: rates and quantiles between two samples ------------------------------------------

def _delta(new: float, old: float) -> float:
    # A count that went down was reset (Redis emptied): it counted from zero since.
    return new - old if new >= old else new


def quantile(q: float, cumulative: list[float]) -> float | None:
    """The q-quantile in seconds of observations counted per bucket (cumulative, one count per
    bound of LATENCY_BUCKETS then +Inf), interpolated inside its bucket as Prometheus's
    histogram_quantile does; the top finite bound when it falls in +Inf; None without any."""
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return None
    rank = q * total
    below, lower = 0.0, 0.0
    for bound, count in zip(_BOUNDS, cumulative, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        below, lower = count, bound
    return lower


def _interval(old: Sample, new: Sample) -> dict[str, Any]:
    seconds = max(new["at"] - old["at"], 1e-9)
    per_minute = 60.0 / seconds
    boots = {outcome: round(_delta(new["boots"].get(outcome, 0.0),
                                   old["boots"].get(outcome, 0.0)) * per_minute, 2)
             for outcome in _BOOT_OUTCOMES}
    api = {}
    for family, counts in new["api"].items():
        before = old["api"].get(family, [0.0] * len(counts))
        window = [_delta(n, o) for n, o in zip(counts, before, strict=True)]
        if window[-1] > 0:
            api[family] = {"p50": _ms(quantile(0.5, window)), "p95": _ms(quantile(0.95, window)),
                           "per_minute": round(window[-1] * per_minute, 2)}
    return {"at": new["at"], "seconds": round(seconds, 3),
            "boots_per_minute": boots, "api": api, "queues": new.get("queues")}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _no_valid_host(samples: list[Sample]) -> dict[str, Any]:
    newest, oldest = samples[-1], samples[0]
    return {
        "total": dict(sorted(newest["no_valid_host"].items())),
        "recent": {name: _delta(count, oldest["no_valid_host"].get(name, 0.0))
                   for name, count in sorted(newest["no_valid_host"].items())},
        "recent_seconds": round(newest["at"] - oldest["at"], 3),
    }


def _recent(samples: list[Sample]) -> dict[str, Any] | None:
    """The rates over about the last minute: the newest sample against the oldest kept one no
    more than RECENT_SECONDS older (or the one just before, after a gap)."""
    if len(samples) < 2:
        return None
    newest = samples[-1]
    within = [s for s in samples[:-1] if newest["at"] - s["at"] <= RECENT_SECONDS]
    return _interval(within[0] if within else samples[-2], newest)


# --- host use ----------------------------------------------------------------------------------

def host_use() -> dict[str, Any]:
    """Each compute host's vCPUs, RAM (MiB) and disk (GiB): used, the hardware's total and the
    capacity the scheduler fills to (total × allocation ratio); and the same summed."""
    now_hosts = []
    total = {kind: {"used": 0.0, "total": 0.0, "capacity": 0.0}
             for kind in ("vcpus", "memory_mb", "disk_gb")}
    for node in ComputeNode.objects.select_related("service").order_by("host"):
        use = {
            "vcpus": (node.vcpus_used, node.vcpus, node.cpu_allocation_ratio),
            "memory_mb": (node.memory_mb_used, node.memory_mb, node.ram_allocation_ratio),
            "disk_gb": (node.local_gb_used, node.local_gb, node.disk_allocation_ratio),
        }
        row: dict[str, Any] = {
            "host": node.host,
            "status": (compute_hosts.host_status(node.service) or "unknown").lower(),
        }
        for kind, (used, size, ratio) in use.items():
            figures = {"used": used, "total": size, "capacity": round(size * ratio, 2)}
            row[kind] = figures
            for name, value in figures.items():
                total[kind][name] += value
        now_hosts.append(row)
    return {"hosts": now_hosts, "total": total}


# --- the whole answer --------------------------------------------------------------------------

def snapshot(now: float | None = None, since: float | None = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (the shape is in docs/observability.md);
    with `since`, only the points after it (a page that has the rest asks for what is new)."""
    now = _now() if now is None else now
    samples = history(now)
    points = [_interval(old, new) for old, new in pairwise(samples)
              if since is None or new["at"] > since]
    latest = samples[-1] if samples else None
    return {
        "at": latest["at"] if latest else now,
        "step_seconds": STEP_SECONDS,
        "keep_seconds": KEEP_SECONDS,
        "now": _recent(samples),
        "points": points,
        "queues": latest.get("queues") if latest else None,
        "no_valid_host": _no_valid_host(samples) if samples else None,
        **host_use(),
    }
